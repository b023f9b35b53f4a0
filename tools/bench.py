"""Benchmark: train.py's whole epoch against a plain Keras script doing the same job, and the
training step against the machine's own matmul limit.

    python tools/bench.py --data-dir ../shared/data/cifar-10-jpeg     # table, ./bench.json
    python tools/bench.py --data-dir D --train-images 5000 --quick     # a quick look
    python tools/bench.py --data-dir D --precisions fp32,bf16          # bf16 even where emulated

The rows:

- epoch (whole processes, each as a user starts it): `train.py --data-dir D --epochs 1
  --precision P --out TMP --run bench --tensorboard 0 --verbose 0` in --precision (default: auto,
  as train.py resolves it: bf16 on CPUs with AVX512-BF16/AMX, fp16 on GPUs, else fp32), and the
  plain Keras script `python -m benchmarks.plain_keras` (its docstring says what it does: the same
  network, data, augmentation, Adam, validation and test, written the way course code is) in fp32
  and with keras.mixed_precision.set_global_policy("mixed_bfloat16"). Each runs --reps times in
  alternating order (train.py, plain fp32, plain bf16, then again), so a machine that slows down
  slows all alike. "the epoch" is train.py's history.csv `seconds` (training.callbacks'
  EpochRecorder: from the epoch's start through training, validation and the test evaluation,
  tracing included; not start-up, data loading or the saving after it) and the same span in the
  plain script; "whole process" is the wall time from start to exit (CPU seconds are in
  bench.json's epoch_runs). The full epoch is 45,000 augmented training images, 5,000 validation
  and 10,000 test images, batch 100; --train-images shortens it, and the table and bench.json
  then say it is not full size and the targets not comparable. Without bf16 instructions the bf16
  baseline is skipped, with a note, unless --precisions lists it: emulated bf16 runs several
  times slower than fp32.
- train.py vs plain Keras: the plain script's median seconds over train.py's (how many times
  faster train.py is), by the epoch and by the whole process, with the min and max of the
  per-repetition ratios (repetition i of the plain script over repetition i of train.py).
- roofline: TensorFlow's matmul, n x n by n x n, 2 n^3 FLOP, in each precision measured and
  train.py's, for a few n; each call takes the next of a pool of distinct input pairs twice the
  size of the last-level cache, so no call finds its operands cached. The best median over n is
  the machine's limit for MFU; bf16 more than 2x fp32 is flagged (not possible on AVX512-BF16).
- step only: train.py's compiled model (the report's Config in train.py's precision) fed one
  cached batch of 100 again and again: the training step's own speed, no input pipeline.
- inference: evaluation.scoring.predict (500-image batches) in fp32 and in train.py's precision.
- neurons.py scan: analysis.activations.top_activations on CONV4 over 10,000 images.
In-process figures are the median of --reps timed repetitions after a warm-up (a slow one stops
after its budget, but not before 2); their images are random (speed does not depend on pixels).

FLOPs per image come from the layer shapes, counting a multiply-add as 2 FLOPs:
  Conv2D (k x k kernel, C_in -> C_out channels, output H x W):  2 * H * W * k * k * C_in * C_out
  Dense (n_in -> n_out):                                         2 * n_in * n_out
  training = 3 x forward (0.495 GFLOP per image; the backward pass computes the gradients of the
  inputs and of the weights, each costing one forward), the usual convention (Kaplan et al. 2020;
  Chowdhery et al. 2022, PaLM, appendix B for MFU). Element-wise layers, the optimizer update and
  CONV1's unneeded input gradient are left out.
MFU (model-FLOP utilization) = images/s x training FLOPs per image / the roofline in that precision.

bench.json holds every row, each process's seconds, the ratios and `targets`: epoch_seconds (goal
30, lower is better), vs_plain_keras_fp32 (2.5), vs_plain_keras_bf16 (1.5), step_vs_matmul (the
step's MFU, 0.8), each with value, goal, met, min and max.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python tools/bench.py`: the packages live in the repository root, one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import dataclasses
import json
from typing import TYPE_CHECKING

import cli
from cli.args import parser
from models.config import CHOICES
from runs import atomic_write_text

if TYPE_CHECKING:
    from benchmarks.timing import Settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = parser(__doc__)
    p.add_argument("--data-dir",
                   help="CIFAR-10 folder or tar.gz (default: $CIFAR10_DIR, else Keras' download)")
    p.add_argument("--out", help="folder for bench.json (default: the current folder)")
    p.add_argument("--json", help="JSON path (default: OUT/bench.json)")
    p.add_argument("--reps", type=int, default=3, help="repetitions of every figure (default: 3)")
    p.add_argument("--train-images", type=int,
                   help="a shorter epoch: the first N training images (default: all 45,000)")
    p.add_argument("--val-images", type=int, default=5000,
                   help="validation images, train.py's --val-size (default: 5000)")
    p.add_argument("--precision", choices=CHOICES["precision"], default="auto",
                   help="train.py's and the step's precision (default: auto, as train.py)")
    p.add_argument("--precisions",
                   help="the plain Keras baselines to run, e.g. fp32,bf16 (default: fp32, and "
                        "bf16 where the machine computes it natively)")
    p.add_argument("--quick", action="store_true",
                   help="short in-process figures (one matmul size, small sets); the epochs as "
                        "asked")
    p.add_argument("--seed", type=int, default=0, help="seed of the random images (default: 0)")
    return p.parse_args(argv)


def forced_precisions(text: str | None) -> list[str] | None:
    """--precisions as a list, or None where not given; anything but fp32 and bf16 is refused."""
    from benchmarks.suite import BASELINES

    if text is None:
        return None
    picked = [part.strip() for part in text.split(",") if part.strip()]
    if not picked or not set(picked) <= set(BASELINES):
        raise cli.UsageError(f"--precisions takes fp32 and/or bf16 separated by commas, not "
                             f"{text!r}")
    return picked


def settings_from(args: argparse.Namespace) -> Settings:
    """The measurement settings: --quick's or the full ones, with the flags given over them."""
    if args.reps < 1 or (args.train_images is not None and args.train_images < 1) \
            or args.val_images < 1:
        raise cli.UsageError("--reps, --train-images and --val-images must be at least 1")
    from benchmarks.timing import QUICK, Settings

    s = Settings(**QUICK) if args.quick else Settings()
    return dataclasses.replace(s, reps=args.reps, train_images=args.train_images,
                               val_images=args.val_images)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cli.start_quietly()  # after the flags: --help and a bad flag answer before TensorFlow loads
    from benchmarks.suite import baseline_precisions, run_benchmark
    from benchmarks.table import table
    from training.devices import resolve_precision

    s, baselines = settings_from(args), baseline_precisions(forced_precisions(args.precisions))
    path = Path(args.json) if args.json else Path(args.out or ".") / "bench.json"
    result = run_benchmark(s, resolve_precision(args.precision), baselines, args.data_dir,
                           args.seed)
    print(table(result))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    cli.main_with_errors(main)
