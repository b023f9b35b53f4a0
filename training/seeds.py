"""The seeds study: one preset trained with several seeds, one run folder each (OUT/seed-N), and
each run's best weights evaluated by evaluate.py, so that a recipe's number is a mean over seeds
rather than one lucky run.

Resuming and skipping are training.study_plan's, the same as for the other studies: rerunning
the command continues where it stopped, and a folder holding another preset or seed is refused.
"""

from __future__ import annotations

from pathlib import Path

import runs
from models.config import PRESETS, Config, ConfigError
from training.studies import Variant
from training.study_plan import Step, check_same_settings, plan_step

DEFAULT_SEEDS = "0,1,2"
ELSEWHERE = "another --out"  # the flag that puts a seeds study's runs into other folders


def parse_seeds(text: str) -> list[int]:
    """--seeds' text ("0,1,2") as seeds, in the order given; anything else is one ConfigError."""
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isascii() and part.isdigit() for part in parts):
        raise ConfigError(f"--seeds takes seeds (whole numbers, 0 or more) separated by commas, "
                          f"e.g. 0,1,2; not {text!r}")
    seeds = [int(part) for part in parts]
    twice = next((seed for i, seed in enumerate(seeds) if seed in seeds[:i]), None)
    if twice is not None:
        raise ConfigError(f"--seeds names seed {twice} twice ({text!r}); each seed trains once")
    return seeds


def check_preset(preset: str) -> None:
    if preset not in PRESETS:
        raise ConfigError(f"no preset {preset!r}; choose one of {', '.join(sorted(PRESETS))}")


def seeds_folder(preset: str, out: str | Path | None = None) -> Path:
    """Where the seed runs go: out, else logs/seeds-PRESET."""
    return Path(out) if out else runs.LOGS / f"seeds-{preset}"


def seed_variant(preset: str, seed: int) -> Variant:
    return Variant(f"seed-{seed}", f"{preset} seed {seed}", {"preset": preset})


def evaluate_arguments(folder: Path, data_dir: str | None) -> list[str]:
    """evaluate.py's arguments that score a seed run's best weights."""
    data = ["--data-dir", data_dir] if data_dir else []
    return ["--run", str(folder), "--which", "best", *data]


def plan_seeds(preset: str, seeds: list[int], *, epochs: int | None = None,
               data_dir: str | None = None, out: str | Path | None = None,
               extra: list[str] | None = None) -> list[Step]:
    """Per seed, its training step (train, resume or skip) and, where its weights are new or
    evaluate.py's JSON absent, an "evaluate" step. epochs defaults to the preset's."""
    check_preset(preset)
    epochs = Config.from_settings({"preset": preset}).epochs if epochs is None else epochs
    if epochs < 1:
        raise ConfigError(f"--epochs must be at least 1, not {epochs}")
    out = seeds_folder(preset, out)
    steps = []
    for seed in seeds:
        variant = seed_variant(preset, seed)
        base = ["--run", variant.name, "--out", str(out)]
        step = plan_step(variant, out / variant.name, base=base, epochs=epochs, seed=seed,
                         data_dir=data_dir, extra=list(extra or []), elsewhere=ELSEWHERE)
        steps.append(step)
        # Weights trained now make any earlier evaluation stale.
        if step.action != "skip" or not current_evaluation(step.folder):
            steps.append(Step(variant, step.folder, "evaluate",
                              evaluate_arguments(step.folder, data_dir)))
    return steps


def current_evaluation(folder: Path) -> bool:
    """Whether evaluate.py's JSON of the run's best weights is there and still theirs."""
    try:
        return runs.read_evaluation(folder) is not None
    except runs.RunError:
        return False


def finished_folders(preset: str, seeds: list[int], out: str | Path | None = None) -> list[Path]:
    """The seeds' run folders as they are, for a summary without training: each must hold a
    finished epoch of this preset and seed."""
    check_preset(preset)
    folders = []
    for seed in seeds:
        folder = seeds_folder(preset, out) / seed_variant(preset, seed).name
        if not runs.read_history(folder):
            raise runs.RunError(f"{folder} has no finished epoch in {runs.HISTORY}; run the "
                                f"command without --summarize-only to train it")
        check_same_settings(folder, {"preset": preset, "seed": seed}, elsewhere=ELSEWHERE,
                            whole=False)
        folders.append(folder)
    return folders
