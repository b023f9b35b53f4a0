"""What a study does now: for each of its variants (training.studies), train it afresh, resume it
or skip it, decided from the variant's run folder, and train.py's arguments that do it (study.py
runs them, each in a process of its own: cli.training.run_in_child).

Every variant trains with the same seed and epochs into OUT/[PREFIX-]NAME. Rerunning a study
continues where it stopped: a run folder with a checkpoint is resumed and a finished one skipped.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import runs
from models.config import RESUMABLE_CHANGES, Config, ConfigError, flag_name
from training.studies import STUDIES, Variant


@dataclasses.dataclass
class Step:
    """What the study does for one variant: "train" (fresh), "resume" or "skip" (finished)."""

    variant: Variant
    folder: Path
    action: str
    argv: list[str]  # train.py's arguments (evaluate.py's for an "evaluate" step); [] to skip
    note: str = ""


def settings_flags(settings: dict[str, Any]) -> list[str]:
    """Config fields as train.py flags: {"conv_dropout": 0.0} -> ["--conv-dropout", "0.0"]."""
    return [token for key, value in settings.items()
            for token in (flag_name(key), str(value))]


def split_flags(args: list[str]) -> list[list[str]]:
    """["--limit", "5", "--xla"] -> [["--limit", "5"], ["--xla"]]: each flag with its values."""
    groups: list[list[str]] = []
    for token in args:
        if token.startswith("--") or not groups:
            groups.append([token])
        else:
            groups[-1].append(token)
    return groups


def fields_named(extra: list[str]) -> set[str]:
    """The Config fields that extra train.py flags set: "--no-flip" sets flip, "--lr" (an alias,
    models.config.setting) learning_rate, "--dropout" both rates; flags of no field (--verbose)
    name none."""
    by_flag = {"--dropout": {"conv_dropout", "fc_dropout"}}
    for field in dataclasses.fields(Config):
        for flag in (flag_name(field.name), flag_name(field.name, False),
                     *field.metadata.get("aliases", ())):
            by_flag[flag] = {field.name}
    return set().union(*(by_flag.get(group[0], set()) for group in split_flags(extra)))


def check_same_settings(folder: Path, wanted: dict[str, Any], extra: list[str] = (),
                        elsewhere: str = "another --out or --prefix", *,
                        whole: bool = True) -> None:
    """A folder holding another recipe must not be resumed as if it were this one: its
    config.json must be the Config that wanted (the variant's settings and seed) makes, but for
    what --resume may change and what the extra flags set (train.py --resume checks those);
    with whole False, only wanted's own fields are compared (a summary, which knows no extra
    flags). elsewhere names the flags that put the runs into other folders."""
    saved = runs.read_config(folder)
    if saved is None:
        return
    ignored = {*RESUMABLE_CHANGES, *fields_named(list(extra))}
    different = [f"{key}={old!r} (study: {new!r})" for key, (old, new)
                 in saved.differences(Config.from_settings(wanted)).items()
                 if key not in ignored and (whole or key in wanted)]
    if different:
        more = f" and {len(different) - 3} more" if len(different) > 3 else ""
        raise runs.RunError(f"{folder} holds another run ({', '.join(different[:3])}{more}); "
                            f"pass {elsewhere}, or remove the folder")


def plan_step(variant: Variant, folder: Path, *, base: list[str], epochs: int, seed: int,
              data_dir: str | None, extra: list[str],
              elsewhere: str = "another --out or --prefix") -> Step:
    """The step of one variant, from what its folder holds; elsewhere names the flags that put
    the runs into other folders, for the refusals."""
    data = ["--data-dir", data_dir] if data_dir else []
    checkpoint = folder / runs.CHECKPOINT
    if not checkpoint.exists() and not (folder / runs.HISTORY).exists():
        argv = [*base, *settings_flags(variant.settings), "--epochs", str(epochs),
                "--seed", str(seed), *data, *extra]
        return Step(variant, folder, "train", argv)
    check_same_settings(folder, {**variant.settings, "seed": seed}, extra, elsewhere)
    done = runs.epochs_done(folder)
    if done >= epochs:
        return Step(variant, folder, "skip", [], f"finished ({done} of {epochs} epochs)")
    if not checkpoint.exists():
        raise runs.RunError(f"{folder} has {done} of {epochs} epochs and no {runs.CHECKPOINT} "
                            f"to resume from; pass {elsewhere}, or fewer --epochs")
    # The extra flags go along: train.py --resume refuses one whose value differs from the
    # run's config.json, and accepts the same value.
    argv = [*base, "--resume", "--epochs", str(epochs), *data, *extra]
    return Step(variant, folder, "resume", argv, f"resumes at epoch {done + 1}")


def plan_study(study: str, *, epochs: int | None = None, seed: int = 0,
               data_dir: str | None = None, out: str | Path | None = None, prefix: str = "",
               extra: list[str] | None = None) -> list[Step]:
    """One Step per variant of the study, in the study's order. out defaults to logs/STUDY;
    extra arguments go to every train.py run as they are."""
    if study not in STUDIES:
        raise ConfigError(f"no study {study!r}; choose one of {', '.join(STUDIES)}")
    epochs = Config().epochs if epochs is None else epochs
    if epochs < 1:
        raise ConfigError(f"--epochs must be at least 1, not {epochs}")
    out = Path(out) if out else runs.LOGS / study
    steps = []
    for variant in STUDIES[study].variants:
        name = f"{prefix}-{variant.name}" if prefix else variant.name
        base = ["--run", name, "--out", str(out)]
        steps.append(plan_step(variant, out / name, base=base, epochs=epochs, seed=seed,
                               data_dir=data_dir, extra=list(extra or [])))
    return steps


def best_line(step: Step) -> str | None:
    """The step's run in one line: its best validation accuracy and the epoch it came at (the
    first on ties, as training keeps it), or None where the run has no finished epoch."""
    rows = runs.read_history(step.folder)
    if not rows:
        return None
    best = runs.best_row(rows)
    return (f"{step.variant.label:32s} best val accuracy {best['val_accuracy']:.4f} "
            f"at epoch {best['epoch']} of {len(rows)} (test {best['test_accuracy']:.4f})")
