"""Run one of the report's experiment studies: several train.py runs, one run folder each.

    python study.py bn-dropout --data-dir ../shared/data/cifar-10-jpeg --epochs 30
    python study.py optimizers --data-dir ../shared/data/cifar-10-jpeg --dry-run
    python study.py bn-dropout --epochs 5 -- --limit 5000 --precision bf16

A study is a named table of configurations (training/studies.py); every configuration trains
with the same seed and epochs, one after the other, into OUT/[PREFIX-]NAME (OUT defaults to
logs/STUDY). Rerunning the same command continues where it stopped: a run folder with a
checkpoint is resumed (`train.py --resume`, which keeps the run's own config.json) and a finished
one is skipped. Arguments after `--` go to every train.py command as they are.
"""

from __future__ import annotations

import cli

cli.start_quietly()

import argparse
import shlex
import sys

from models.config import Config
from training.studies import STUDIES
from training.study_plan import Step, best_line, plan_study, run_step


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The study's own flags, and the arguments after `--` (for every train.py command)."""
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    studies = "\n".join(f"  {s.name:15s}{s.title}" for s in STUDIES.values())
    p = argparse.ArgumentParser(description=__doc__, epilog=f"studies:\n{studies}",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("study", choices=sorted(STUDIES), help="which study to run")
    p.add_argument("--data-dir", help="CIFAR-10 folder or tar.gz, passed to train.py")
    p.add_argument("--epochs", type=int, default=Config().epochs,
                   help="epochs of every run (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of every run (default: %(default)s)")
    p.add_argument("--out", help="folder for the run folders (default: logs/STUDY)")
    p.add_argument("--prefix", default="", help="run folders are named PREFIX-NAME instead of NAME")
    p.add_argument("--dry-run", action="store_true",
                   help="print the train.py commands, run nothing")
    return p.parse_args(argv), extra


def run_steps(steps: list[Step], dry_run: bool) -> None:
    """Each step's line and command, then the command itself (not in a dry run)."""
    for index, step in enumerate(steps, 1):
        variant = step.variant
        header = (f"[{index}/{len(steps)}] {variant.label} ({variant.name}): "
                  f"{step.action} {step.folder}")
        print(header + (f", {step.note}" if step.note else ""), flush=True)
        if step.action == "skip":
            continue
        print(shlex.join(step.command), flush=True)
        if not dry_run:
            run_step(step)


def main() -> None:
    args, extra = parse_args(sys.argv[1:])
    steps = plan_study(args.study, epochs=args.epochs, seed=args.seed, data_dir=args.data_dir,
                       out=args.out, prefix=args.prefix, extra=extra)
    run_steps(steps, args.dry_run)
    if not args.dry_run:
        for line in filter(None, map(best_line, steps)):
            print(line)


if __name__ == "__main__":
    cli.main_with_errors(main)
