"""Run one of the report's experiment studies: several train.py runs, one run folder each.

    python study.py bn-dropout --data-dir ../shared/data/cifar-10-jpeg --epochs 30
    python study.py optimizers --data-dir ../shared/data/cifar-10-jpeg --dry-run
    python study.py bn-dropout --epochs 5 -- --limit 5000 --precision bf16
    python study.py seeds --preset tuned --seeds 0,1,2 --data-dir ../shared/data/cifar-10-jpeg

A study is a named table of configurations (training/studies.py); every configuration trains
with the same seed and epochs, one after the other, into OUT/[PREFIX-]NAME (OUT defaults to
logs/STUDY). The seeds study trains one preset once per seed into OUT/seed-N (OUT defaults to
logs/seeds-PRESET), scores each run's best weights with evaluate.py and writes OUT/summary.json
and OUT/summary.md (mean, sample std, min and max over the seeds); --summarize-only rewrites the
summary from the folders as they are. Each run is train.py's command in a process of its own.
Rerunning the same command continues where it stopped: a run folder with a checkpoint is resumed
(`train.py --resume`, which refuses a flag that differs from the run's config.json) and a
finished one is skipped; a folder holding another recipe is refused. Arguments after `--` go to
every train.py run as they are.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable

import cli
import runs
from cli.args import parser
from cli.evaluating import evaluate_main
from cli.training import run_in_child
from models.config import PRESETS, Config
from reporting.seed_summary import summarize, summary_markdown, write_summary
from training.seeds import (
    DEFAULT_SEEDS,
    finished_folders,
    parse_seeds,
    plan_seeds,
    seeds_folder,
)
from training.studies import STUDIES
from training.study_plan import Step, best_line, plan_study


def add_common(p: argparse.ArgumentParser, epochs: str, out: str) -> None:
    p.add_argument("--data-dir", help="CIFAR-10 folder or tar.gz, passed to train.py")
    p.add_argument("--epochs", type=int, default=None, help=f"epochs of every run ({epochs})")
    p.add_argument("--out", help=f"folder for the run folders (default: {out})")
    p.add_argument("--dry-run", action="store_true",
                   help="print the commands, run nothing")


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The study's own flags, and the arguments after `--` (for every train.py command)."""
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = parser(__doc__)
    studies = p.add_subparsers(dest="study", required=True, metavar="STUDY", title="studies")
    for study in STUDIES.values():
        s = studies.add_parser(study.name, help=study.title, description=study.title)
        add_common(s, f"default: {Config().epochs}", "logs/STUDY")
        s.add_argument("--seed", type=int, default=0,
                       help="seed of every run (default: %(default)s)")
        s.add_argument("--prefix", default="",
                       help="run folders are named PREFIX-NAME instead of NAME")
    s = studies.add_parser("seeds", help="one preset once per seed, evaluated and summarized",
                           description="One preset trained once per seed into OUT/seed-N, each "
                           "run's best weights scored by evaluate.py, and OUT/summary.json and "
                           "OUT/summary.md written.")
    s.add_argument("--preset", required=True, choices=sorted(PRESETS), help="the recipe")
    s.add_argument("--seeds", default=DEFAULT_SEEDS,
                   help="seeds separated by commas (default: %(default)s)")
    add_common(s, "default: the preset's", "logs/seeds-PRESET")
    s.add_argument("--summarize-only", action="store_true",
                   help="rewrite the summary from the seed folders as they are; run nothing")
    return p.parse_args(argv), extra


def train_step(step: Step) -> None:
    """A step's train.py run, in a process of its own; a failure is one line."""
    status = run_in_child(step.argv)
    if status != 0:
        raise runs.RunError(f"train.py failed for {step.folder} (exit status {status}); rerun "
                            f"the same study command to resume from its last finished epoch")


def seed_step(step: Step) -> None:
    """A seeds study's step: a training, or evaluate.py's scoring of the run's best weights
    (the command its line shows, in this process)."""
    if step.action == "evaluate":
        evaluate_main(step.argv)
    else:
        train_step(step)


def run_steps(steps: list[Step], dry_run: bool, run: Callable[[Step], None] = train_step) -> None:
    """Each step's line and command, then the command itself (not in a dry run)."""
    for index, step in enumerate(steps, 1):
        variant = step.variant
        header = (f"[{index}/{len(steps)}] {variant.label} ({variant.name}): "
                  f"{step.action} {step.folder}")
        print(header + (f", {step.note}" if step.note else ""), flush=True)
        if step.action == "skip":
            continue
        script = "evaluate.py" if step.action == "evaluate" else "train.py"
        print(shlex.join(["python", script, *step.argv]), flush=True)
        if not dry_run:
            run(step)


def study_main(args: argparse.Namespace, extra: list[str]) -> None:
    steps = plan_study(args.study, epochs=args.epochs, seed=args.seed, data_dir=args.data_dir,
                       out=args.out, prefix=args.prefix, extra=extra)
    run_steps(steps, args.dry_run)
    if not args.dry_run:
        for line in filter(None, map(best_line, steps)):
            print(line)


def seeds_main(args: argparse.Namespace, extra: list[str]) -> None:
    seeds = parse_seeds(args.seeds)
    if args.summarize_only:
        if args.dry_run or args.epochs is not None or args.data_dir or extra:
            raise cli.UsageError("--summarize-only runs nothing, so it takes no --dry-run, "
                                 "--epochs, --data-dir or arguments after --")
        folders = finished_folders(args.preset, seeds, args.out)
    else:
        steps = plan_seeds(args.preset, seeds, epochs=args.epochs, data_dir=args.data_dir,
                           out=args.out, extra=extra)
        run_steps(steps, args.dry_run, seed_step)
        if args.dry_run:
            return
        folders = [step.folder for step in steps if step.action != "evaluate"]
    summary = summarize(folders, args.preset)
    paths = write_summary(seeds_folder(args.preset, args.out), summary)
    print(summary_markdown(summary))
    print(f"wrote {paths['json']} and {paths['markdown']}")


def main() -> None:
    args, extra = parse_args(sys.argv[1:])
    cli.check_backend()  # study.py only plans and summarizes: its train.py runs start TensorFlow
    (seeds_main if args.study == "seeds" else study_main)(args, extra)


if __name__ == "__main__":
    cli.main_with_errors(main)
