"""Benchmark: training and analysis speed against plain Keras and against the machine's own limit.

    python tools/bench.py             # table on stdout, bench.json in the current folder
    python tools/bench.py --quick     # shorter and fewer repetitions, no XLA
    python tools/bench.py --json results/bench.json

Every figure is the median of several timed repetitions after a warm-up (tracing, XLA
compilation, oneDNN kernel selection), printed with its min and max; the number of repetitions is
in the table (a slow measurement stops after --budget seconds, with at least 2). The data are
random uint8 images: throughput does not depend on the pixels. On a shared machine, compare min
and max: TensorFlow splits each kernel over all cores, so one core taken by another process can
halve a repetition's speed. The rows:

- roofline: TensorFlow's own matmul, n x n by n x n, 2 n^3 FLOP, in float32 and bfloat16 (float16 on
  a GPU), for a few n; the best median over n is the machine's limit used for MFU.
- training, train.py path: training.setup.build_compiled under the precision's Keras policy, fed
  by data.make_dataset with every augmentation setting of the run's Config (shuffle, random
  translation, flip, Cutout, float32 cast, prefetch) through model.fit, as a run trains; each
  precision the machine supports (fp32; bf16 on CPUs with AVX512-BF16/AMX and on GPUs; fp16 on
  GPUs), without and with XLA (jit_compile).
- training, step only: the same compiled model fed one cached batch again and again, so no input
  pipeline: the training step's own speed.
- training, plain Keras: the way most course code trains: models.build_model, model.compile("adam",
  ...) with Keras' defaults, model.fit(x, y, batch_size=100) on numpy arrays, float32, no tf.data.
  "vs plain Keras" is images/s divided by this row's.
- whole epoch: a run's epoch with training.callbacks' own callbacks (validation, the test-set
  evaluation, saving weights, checkpoint and history), on a scaled-down split of the same
  proportions; its phases are timed per image and projected to the full 45,000 / 5,000 /
  10,000-image epoch.
- inference: evaluation.predict (float32, 500-image batches) and the same in the default precision.
- neurons.py scan: analysis.activations.top_activations on CONV4 over the 10,000 test images.

FLOPs per image come from the layer shapes, counting a multiply-add as 2 FLOPs:
  Conv2D (k x k kernel, C_in -> C_out channels, output H x W):  2 * H * W * k * k * C_in * C_out
  Dense (n_in -> n_out):                                         2 * n_in * n_out
  training = 3 x forward (the backward pass computes the gradients of the inputs and of the weights,
  each costing one forward), the usual convention (Kaplan et al. 2020, "Scaling Laws for Neural
  Language Models"; Chowdhery et al. 2022, PaLM, appendix B for MFU). Element-wise layers (ReLU,
  pooling, dropout, batch norm, softmax), the optimizer update and CONV1's unneeded input gradient
  are left out.
MFU (model-FLOP utilization) = images/s x training FLOPs per image / the roofline in that precision.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python tools/bench.py`: the packages live in the repository root, one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cli

cli.start_quietly()

import argparse
import json

import benchmarks


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="short repetitions, no XLA, small sets")
    p.add_argument("--out", help="folder for bench.json (default: the current folder)")
    p.add_argument("--json", help="JSON path (default: OUT/bench.json)")
    p.add_argument("--batch-size", type=int, default=100,
                   help="training batch size (default: 100, the report's)")
    p.add_argument("--reps", type=int, help="timed repetitions per figure (default: 5; --quick 3)")
    p.add_argument("--budget", type=float,
                   help="seconds after which a figure stops repeating (default: 20)")
    p.add_argument("--no-xla", action="store_true",
                   help="skip the XLA rows (pathologically slow on CPUs)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random images (default: 0)")
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace) -> benchmarks.Settings:
    """The measurement settings: --quick's or the full ones, with the flags given over them."""
    s = benchmarks.Settings(**benchmarks.QUICK) if args.quick else benchmarks.Settings()
    s.batch_size = args.batch_size
    s.reps = args.reps if args.reps is not None else s.reps
    s.budget = args.budget if args.budget is not None else s.budget
    s.xla = s.xla and not args.no_xla
    if s.batch_size < 1 or s.reps < 2 or s.budget <= 0:
        raise cli.UsageError("--batch-size must be at least 1, --reps at least 2 and --budget "
                             "positive")
    return s


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    s = settings_from(args)
    path = Path(args.json) if args.json else Path(args.out or ".") / "bench.json"
    result = benchmarks.run_benchmark(s, args.seed)
    print(benchmarks.table(result))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    cli.main_with_errors(main)
