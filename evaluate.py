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

import sys

import cli
from cli.evaluating import evaluate_main


def main(argv: list[str] | None = None) -> None:
    evaluate_main(sys.argv[1:] if argv is None else argv, doc=__doc__)


if __name__ == "__main__":
    cli.main_with_errors(main)
