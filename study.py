"""Run one of the report's experiment studies: several train.py runs, one run folder each.

    python study.py bn-dropout --data-dir ../shared/data/cifar-10-jpeg --epochs 30
    python study.py optimizers --data-dir ../shared/data/cifar-10-jpeg --dry-run
    python study.py bn-dropout --epochs 5 -- --limit 5000 --precision bf16

A study is a named table of configurations (STUDIES below); every configuration trains with the
same seed and epochs, one after the other, into OUT/[PREFIX-]NAME (OUT defaults to logs/STUDY).
Rerunning the same command continues where it stopped: a run folder with a checkpoint is resumed
(`train.py --resume`, which keeps the run's own config.json) and a finished one is skipped.
Arguments after `--` go to every train.py command as they are.

Studies:
  bn-dropout    the report's Task V: batch norm (on the output) crossed with dropout on/off
  bn-everywhere batch norm after every conv layer as well, with and without dropout
  optimizers    the report's miscellaneous experiments: Adam, SGD with momentum, RMSprop
"""

from __future__ import annotations

import models  # noqa: F401 - first, so that TensorFlow starts quietly

# isort: split
import argparse
import csv
import json
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.cli import LOGS, UserError, main_with_errors
from models.config import Config
from train import read_checkpoint_state

ROOT = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Variant:
    """One configuration of a study: its run-folder name, the report's legend for it, its settings."""

    name: str
    label: str
    settings: dict[str, Any] = field(default_factory=dict)  # Config field -> value


NO_DROPOUT = {"conv_dropout": 0.0, "fc_dropout": 0.0}
DROPOUT = {"conv_dropout": 0.5, "fc_dropout": 0.5}

# Batch normalization: Ioffe & Szegedy, ICML 2015; dropout: Srivastava et al., JMLR 2014. Legends are
# the report's (Task V): "BN", "BN without dropouts", "NO BN", "NO BN without dropouts".
STUDIES: dict[str, tuple[Variant, ...]] = {
    "bn-dropout": (
        Variant("bn", "BN", {"batchnorm": "output", **DROPOUT}),
        Variant("bn-no-dropout", "BN without dropouts", {"batchnorm": "output", **NO_DROPOUT}),
        Variant("no-bn", "NO BN", {"batchnorm": "none", **DROPOUT}),
        Variant("no-bn-no-dropout", "NO BN without dropouts", {"batchnorm": "none", **NO_DROPOUT}),
    ),
    "bn-everywhere": (
        Variant("bn-all", "BN everywhere", {"batchnorm": "all", **DROPOUT}),
        Variant("bn-all-no-dropout", "BN everywhere without dropouts", {"batchnorm": "all", **NO_DROPOUT}),
    ),
    # The usual learning rates: Adam and RMSprop 1e-3 (Kingma & Ba 2015; Tieleman & Hinton 2012),
    # SGD 0.01 with momentum 0.9. Everything else stays the report's.
    "optimizers": (
        Variant("adam", "Adam", {"optimizer": "adam", "learning_rate": 1e-3}),
        Variant("sgd", "SGD + momentum", {"optimizer": "sgd", "learning_rate": 0.01, "momentum": 0.9}),
        Variant("rmsprop", "RMSprop", {"optimizer": "rmsprop", "learning_rate": 1e-3}),
    ),
}

# train.py accepts only these flags together with --resume (the run's config.json holds the rest).
RESUME_FLAGS = ("--epochs", "--data-dir", "--verbose", "--cpu-devices")


@dataclass
class Step:
    """What the study does for one variant: "train" (fresh), "resume" or "skip" (finished)."""

    variant: Variant
    folder: Path
    action: str
    command: list[str]
    note: str = ""


def settings_flags(settings: dict[str, Any]) -> list[str]:
    """Config fields as train.py flags: {"conv_dropout": 0.0} -> ["--conv-dropout", "0.0"]."""
    return [token for key, value in settings.items() for token in (f"--{key.replace('_', '-')}", str(value))]


def split_flags(args: list[str]) -> list[list[str]]:
    """["--limit", "5", "--xla"] -> [["--limit", "5"], ["--xla"]]: each flag with its values."""
    groups: list[list[str]] = []
    for token in args:
        if token.startswith("--") or not groups:
            groups.append([token])
        else:
            groups[-1].append(token)
    return groups


def epochs_done(folder: Path) -> int:
    """Epochs the run has finished: its checkpoint's count (history.csv is written after the
    checkpoint, so may lag), else history.csv's rows (published runs keep no checkpoint)."""
    if (folder / "checkpoint.keras").exists():
        return int(read_checkpoint_state(folder / "checkpoint.keras")["epoch"])
    with (folder / "history.csv").open() as f:
        return len(list(csv.DictReader(f)))


def check_same_settings(folder: Path, wanted: dict[str, Any]) -> None:
    """A folder holding a different configuration must not be resumed as if it were this one."""
    saved = json.loads((folder / "config.json").read_text()) if (folder / "config.json").exists() else {}
    different = [f"{key}={saved[key]!r} (study: {value!r})" for key, value in wanted.items()
                 if key in saved and saved[key] != value]
    if different:
        raise UserError(f"{folder} holds another run ({', '.join(different)}); "
                        f"pass another --out or --prefix, or remove the folder")


def plan_step(variant: Variant, folder: Path, base: list[str], epochs: int, seed: int,
              data_dir: str | None, extra: list[str]) -> Step:
    data = ["--data-dir", data_dir] if data_dir else []
    if not (folder / "checkpoint.keras").exists() and not (folder / "history.csv").exists():
        command = [*base, *settings_flags(variant.settings), "--epochs", str(epochs), "--seed", str(seed),
                   *data, *extra]
        return Step(variant, folder, "train", command)
    check_same_settings(folder, {**variant.settings, "seed": seed})
    done = epochs_done(folder)
    if done >= epochs:
        return Step(variant, folder, "skip", [], f"finished ({done} of {epochs} epochs)")
    if not (folder / "checkpoint.keras").exists():
        raise UserError(f"{folder} has {done} of {epochs} epochs and no checkpoint.keras to resume from; "
                        f"pass another --out or --prefix, or fewer --epochs")
    kept = [group for group in split_flags(extra) if group[0] in RESUME_FLAGS]
    dropped = [group[0] for group in split_flags(extra) if group[0] not in RESUME_FLAGS]
    note = f"resumes at epoch {done + 1}"
    if dropped:
        note += f"; keeps its config.json, so ignores {' '.join(dropped)}"
    command = [*base, "--resume", "--epochs", str(epochs), *data, *(token for group in kept for token in group)]
    return Step(variant, folder, "resume", command, note)


def plan_study(study: str, epochs: int | None = None, seed: int = 0, data_dir: str | None = None,
               out: str | Path | None = None, prefix: str = "", extra: list[str] | None = None) -> list[Step]:
    """One Step per variant of the study, deciding from each run folder whether to train, resume or skip."""
    if study not in STUDIES:
        raise UserError(f"no study {study!r}; choose one of {', '.join(STUDIES)}")
    epochs = Config().epochs if epochs is None else epochs
    if epochs < 1:
        raise UserError(f"--epochs must be at least 1, not {epochs}")
    out = Path(out) if out else LOGS / study
    steps = []
    for variant in STUDIES[study]:
        name = f"{prefix}-{variant.name}" if prefix else variant.name
        base = [sys.executable, "train.py", "--run", name, "--out", str(out)]
        steps.append(plan_step(variant, out / name, base, epochs, seed, data_dir, list(extra or [])))
    return steps


def study_commands(study: str, epochs: int | None = None, seed: int = 0, data_dir: str | None = None,
                   out: str | Path | None = None, prefix: str = "", extra: list[str] | None = None) -> list[list[str]]:
    """The train.py commands the study would run now (finished runs have none)."""
    return [step.command for step in plan_study(study, epochs, seed, data_dir, out, prefix, extra) if step.command]


def run_steps(steps: list[Step], dry_run: bool) -> None:
    for index, step in enumerate(steps, 1):
        header = f"[{index}/{len(steps)}] {step.variant.label} ({step.variant.name}): {step.action} {step.folder}"
        print(header + (f", {step.note}" if step.note else ""), flush=True)
        if step.action == "skip":
            continue
        print(shlex.join(step.command), flush=True)
        if dry_run:
            continue
        result = subprocess.run(step.command, cwd=ROOT)
        if result.returncode != 0:
            raise UserError(f"train.py failed for {step.folder} (exit status {result.returncode}); "
                            f"rerun the same study command to resume from its last finished epoch")


def summarize(steps: list[Step]) -> None:
    """One line per finished run: its best validation accuracy and the epoch it came at."""
    for step in steps:
        history = step.folder / "history.csv"
        if not history.exists():
            continue
        with history.open() as f:
            rows = list(csv.DictReader(f))
        if rows:
            best = max(rows, key=lambda row: float(row["val_accuracy"]))
            print(f"{step.variant.label:32s} best val accuracy {float(best['val_accuracy']):.4f} "
                  f"at epoch {best['epoch']} of {len(rows)} (test {float(best['test_accuracy']):.4f})")


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("study", choices=sorted(STUDIES), help="which study to run")
    p.add_argument("--data-dir", help="CIFAR-10 folder or tar.gz, passed to train.py")
    p.add_argument("--epochs", type=int, default=Config().epochs, help="epochs of every run (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of every run (default: %(default)s)")
    p.add_argument("--out", help="folder for the run folders (default: logs/STUDY)")
    p.add_argument("--prefix", default="", help="run folders are named PREFIX-NAME instead of NAME")
    p.add_argument("--dry-run", action="store_true", help="print the train.py commands, run nothing")
    return p.parse_args(argv), extra


def main(argv: list[str] | None = None) -> None:
    args, extra = parse_args(argv)
    steps = plan_study(args.study, args.epochs, args.seed, args.data_dir, args.out, args.prefix, extra)
    run_steps(steps, args.dry_run)
    if not args.dry_run:
        summarize(steps)


if __name__ == "__main__":
    main_with_errors(main)
