"""What a study does now: for each of its variants (training.studies), train it afresh, resume it
or skip it, decided from the variant's run folder, and the train.py command that does it.

Every variant trains with the same seed and epochs into OUT/[PREFIX-]NAME. Rerunning a study
continues where it stopped: a run folder with a checkpoint is resumed and a finished one skipped.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import runs
from models.config import Config, ConfigError
from training.studies import STUDIES, Variant

ROOT = Path(__file__).resolve().parent.parent  # where train.py is
# The flags a resumed study run keeps from the extra arguments: train.py's --resume takes the
# rest from the run's config.json, and a different value there would be refused.
RESUME_FLAGS = ("--epochs", "--data-dir", "--verbose", "--cpu-devices")


@dataclasses.dataclass
class Step:
    """What the study does for one variant: "train" (fresh), "resume" or "skip" (finished)."""

    variant: Variant
    folder: Path
    action: str
    command: list[str]
    note: str = ""


def settings_flags(settings: dict[str, Any]) -> list[str]:
    """Config fields as train.py flags: {"conv_dropout": 0.0} -> ["--conv-dropout", "0.0"]."""
    return [token for key, value in settings.items()
            for token in (f"--{key.replace('_', '-')}", str(value))]


def split_flags(args: list[str]) -> list[list[str]]:
    """["--limit", "5", "--xla"] -> [["--limit", "5"], ["--xla"]]: each flag with its values."""
    groups: list[list[str]] = []
    for token in args:
        if token.startswith("--") or not groups:
            groups.append([token])
        else:
            groups[-1].append(token)
    return groups


def check_same_settings(folder: Path, wanted: dict[str, Any],
                        elsewhere: str = "another --out or --prefix") -> None:
    """A folder holding a different configuration must not be resumed as if it were this one;
    elsewhere names the flags that put the runs into other folders."""
    saved = runs.read_config(folder)
    if saved is None:
        return
    different = [f"{key}={getattr(saved, key)!r} (study: {value!r})"
                 for key, value in wanted.items() if getattr(saved, key) != value]
    if different:
        raise runs.RunError(f"{folder} holds another run ({', '.join(different)}); "
                            f"pass {elsewhere}, or remove the folder")


def plan_step(variant: Variant, folder: Path, *, base: list[str], epochs: int, seed: int,
              data_dir: str | None, extra: list[str],
              elsewhere: str = "another --out or --prefix") -> Step:
    """The step of one variant, from what its folder holds; elsewhere names the flags that put
    the runs into other folders, for the refusals."""
    data = ["--data-dir", data_dir] if data_dir else []
    checkpoint = folder / runs.CHECKPOINT
    if not checkpoint.exists() and not (folder / runs.HISTORY).exists():
        command = [*base, *settings_flags(variant.settings), "--epochs", str(epochs),
                   "--seed", str(seed), *data, *extra]
        return Step(variant, folder, "train", command)
    check_same_settings(folder, {**variant.settings, "seed": seed}, elsewhere)
    done = runs.epochs_done(folder)
    if done >= epochs:
        return Step(variant, folder, "skip", [], f"finished ({done} of {epochs} epochs)")
    if not checkpoint.exists():
        raise runs.RunError(f"{folder} has {done} of {epochs} epochs and no {runs.CHECKPOINT} "
                            f"to resume from; pass {elsewhere}, or fewer --epochs")
    kept = [group for group in split_flags(extra) if group[0] in RESUME_FLAGS]
    dropped = [group[0] for group in split_flags(extra) if group[0] not in RESUME_FLAGS]
    note = f"resumes at epoch {done + 1}"
    if dropped:
        note += f"; keeps its config.json, so ignores {' '.join(dropped)}"
    command = [*base, "--resume", "--epochs", str(epochs), *data,
               *(token for group in kept for token in group)]
    return Step(variant, folder, "resume", command, note)


def plan_study(study: str, *, epochs: int | None = None, seed: int = 0,
               data_dir: str | None = None, out: str | Path | None = None, prefix: str = "",
               extra: list[str] | None = None) -> list[Step]:
    """One Step per variant of the study, in the study's order. out defaults to logs/STUDY;
    extra arguments go to every fresh train.py command as they are."""
    if study not in STUDIES:
        raise ConfigError(f"no study {study!r}; choose one of {', '.join(STUDIES)}")
    epochs = Config().epochs if epochs is None else epochs
    if epochs < 1:
        raise ConfigError(f"--epochs must be at least 1, not {epochs}")
    out = Path(out) if out else runs.LOGS / study
    steps = []
    for variant in STUDIES[study].variants:
        name = f"{prefix}-{variant.name}" if prefix else variant.name
        base = [sys.executable, "train.py", "--run", name, "--out", str(out)]
        steps.append(plan_step(variant, out / name, base=base, epochs=epochs, seed=seed,
                               data_dir=data_dir, extra=list(extra or [])))
    return steps


def run_step(step: Step) -> None:
    """Run the step's train.py command from the project root; a failure is a RunError."""
    result = subprocess.run(step.command, cwd=ROOT)
    if result.returncode != 0:
        raise runs.RunError(f"train.py failed for {step.folder} (exit status "
                            f"{result.returncode}); rerun the same study command to resume from "
                            f"its last finished epoch")


def best_line(step: Step) -> str | None:
    """The step's run in one line: its best validation accuracy and the epoch it came at (the
    first on ties, as training keeps it), or None where the run has no finished epoch."""
    rows = runs.read_history(step.folder)
    if not rows:
        return None
    best = runs.best_row(rows)
    return (f"{step.variant.label:32s} best val accuracy {best['val_accuracy']:.4f} "
            f"at epoch {best['epoch']} of {len(rows)} (test {best['test_accuracy']:.4f})")
