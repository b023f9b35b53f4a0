"""Evaluate a run's weights on CIFAR-10: the grader's one command.

    python evaluate.py logs/report                   # the run's best.weights.h5 on the test set
    python evaluate.py report --which last --split val --tta flip
    python evaluate.py path/to/best.weights.h5 --data-dir ../shared/data/cifar-10-jpeg
    python evaluate.py --summary                     # the report's Task IV parameter table

A run folder's config.json rebuilds the exact network variant; a weights file uses the config.json
beside it, else the report's network. Prints loss and accuracy, per-class accuracy and the top
confusions; writes every number to RUN/eval/WHICH-SPLIT.json and the confusion matrix to
RUN/eval/WHICH-SPLIT-confusion.png (or into --out, or to --json PATH).

Deterministic: float32 whatever precision trained the run, no augmentation, dropout off, batch norm
in inference mode, deterministic kernels, so the same weights and data give the same numbers to the
last digit on every run. The validation split is training's (the run's --val-size).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cli
import evaluation
from cli.args import add_weights_and_split_arguments, parser
from cli.evaluating import evaluate_and_report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = parser(__doc__)
    p.add_argument("target", nargs="?", metavar="RUN_OR_WEIGHTS",
                   help="run folder (a name under logs/ or a path) or a .weights.h5 file")
    p.add_argument("--run", help="the same as RUN_OR_WEIGHTS, named as in the other scripts")
    add_weights_and_split_arguments(p, batch_size=500)
    p.add_argument("--tta", choices=evaluation.TTA_CHOICES,
                   help="also report test-time augmentation (mirror images)")
    p.add_argument("--out", help="folder for the JSON and PNG (default: RUN/eval); for --summary, "
                   "the folder for parameters.md (default: the current folder)")
    p.add_argument("--json", help="path of the JSON file (the PNG is written beside it)")
    p.add_argument("--summary", action="store_true",
                   help="print the report's Task IV parameter table (a run's variant if one is "
                   "named); no weights")
    args = p.parse_args(argv)
    if args.run and args.target and args.run != args.target:
        p.error("name the run once: as RUN_OR_WEIGHTS or as --run")
    args.target = args.target or args.run
    if args.out and args.json:
        p.error("pass --out or --json, not both")
    return args


def summarize(target: str | None, out: str | None) -> None:
    """The Task IV table of the target's network variant, built in float32: no weights needed."""
    from evaluation.scoring import run_config
    from models.network import build_from_config
    from models.summary import summary_text, write_summary
    from runs.weights import dtype_policy

    with dtype_policy("float32"):
        model = build_from_config(run_config(target))
    print(summary_text(model), end="")
    print(f"wrote {write_summary(model, Path(out or '.'))}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cli.start_quietly()  # after the flags: --help and a bad flag answer before TensorFlow loads
    if args.summary:
        summarize(args.target, args.out)
        return
    if args.target is None:
        raise cli.UsageError("name a run folder or a weights file to evaluate (or pass --summary); "
                             "see --help")
    evaluate_and_report(args.target, which=args.which, split=args.split,
                        data_dir=args.data_dir, batch_size=args.batch_size, tta=args.tta,
                        json_path=Path(args.json) if args.json else None, out=args.out)


if __name__ == "__main__":
    cli.main_with_errors(main)
