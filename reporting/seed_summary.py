"""The summary of a seeds study (study.py seeds): per seed its best validation accuracy,
evaluate.py's test accuracy of those weights, its minutes and minutes to accuracy; over the
seeds, mean, sample standard deviation, min and max. Written as summary.json and summary.md
beside the seed folders, and rebuilt from them alone."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import runs
from reporting.pages import Table, markdown_block, percent
from reporting.timing import (
    THRESHOLDS,
    cumulative_minutes,
    minutes_cell,
    minutes_to_accuracy,
    threshold_name,
)

SUMMARY = {"json": "summary.json", "markdown": "summary.md"}
MEASURES = ("best_val_accuracy", "test_accuracy", "minutes")
SEED_FOLDER = re.compile(r"seed-(\d+)")
# The published seeds of the budget recipe at 20 epochs, which report.py draws when no other
# folder is given.
BUDGET_SEEDS = runs.LOGS / "reference" / "budget-20"


def seed_numbers(folder: Path, thresholds: tuple[float, ...] = THRESHOLDS) -> dict:
    """One seed run's numbers, from its history.csv and evaluate.py's JSON (test_accuracy None
    where evaluate.py has not run). minutes is every epoch's seconds: the run ends with its
    final weights."""
    rows = runs.read_history(folder)
    best = runs.best_row(rows)
    evaluation = runs.read_evaluation(folder)
    test = evaluation["accuracy"] if evaluation else None
    reached, config = minutes_to_accuracy(rows, thresholds), runs.read_config(folder)
    return {"seed": config.seed if config else None, "run": folder.name, "epochs": len(rows),
            "best_epoch": int(best["epoch"]), "best_val_accuracy": best["val_accuracy"],
            "test_accuracy": test, "minutes": cumulative_minutes(rows)[-1],
            "minutes_to_test_accuracy": {f"{t:g}": m for t, m in reached.items()}}


def spread(values: list[float]) -> dict:
    """Mean, sample standard deviation (None for fewer than two values), min and max."""
    if not values:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    return {"n": len(values), "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else None,
            "min": min(values), "max": max(values)}


def summarize(folders: list[Path], preset: str,
              thresholds: tuple[float, ...] = THRESHOLDS) -> dict:
    """The summary of the seed runs in these folders, the numbers summary.json holds; the test
    accuracy statistics are over the seeds evaluate.py has scored."""
    seeds = [seed_numbers(folder, thresholds) for folder in folders]
    stats = {measure: spread([s[measure] for s in seeds if s[measure] is not None])
             for measure in MEASURES}
    return {"preset": preset, "seeds": [s["seed"] for s in seeds],
            "thresholds": list(thresholds), "runs": seeds, "stats": stats}


def stat_cell(measure: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if measure == "minutes" else percent(value)


def summary_markdown(summary: dict) -> str:
    """summary.md: a line with the means, the per-seed table and the statistics table."""
    thresholds = summary["thresholds"]
    seeds = Table(["seed", "run", "epochs", "best epoch", "best val accuracy",
                   "test accuracy (evaluate.py)", "minutes",
                   *(f"minutes to {threshold_name(t)} test" for t in thresholds)],
                  [[str(s["seed"]), s["run"], str(s["epochs"]), str(s["best_epoch"]),
                    percent(s["best_val_accuracy"]), percent(s["test_accuracy"]),
                    f"{s['minutes']:.1f}",
                    *(minutes_cell(s["minutes_to_test_accuracy"][f"{t:g}"]) for t in thresholds)]
                   for s in summary["runs"]])
    stats = summary["stats"]
    spread_table = Table(["", "best val accuracy", "test accuracy (evaluate.py)", "minutes"],
                         [[key, *(stat_cell(m, stats[m][key]) for m in MEASURES)]
                          for key in ("mean", "std", "min", "max")])
    return "\n".join([f"# Preset {summary['preset']} over seeds "
                      f"{', '.join(map(str, summary['seeds']))}", "", headline(summary), "",
                      *markdown_block(seeds, Path()), "", *markdown_block(spread_table, Path()),
                      "", "std is the sample standard deviation (n - 1); minutes are history.csv's "
                      "seconds summed over the run's epochs.", ""])


def headline(summary: dict) -> str:
    """The result in one line: mean ± std of the test accuracy over the seeds evaluated."""
    test, n = summary["stats"]["test_accuracy"], len(summary["runs"])
    if test["n"] == 0:
        return f"No seed evaluated yet by evaluate.py ({n} trained)."
    std = "" if test["std"] is None else f" ± {100 * test['std']:.2f}"
    return (f"Test accuracy (evaluate.py, best-on-validation weights) {100 * test['mean']:.2f}"
            f"{std}% over {test['n']} of {n} seeds, mean ± sample std; "
            f"{summary['stats']['minutes']['mean']:.1f} minutes a run on average.")


def write_summary(out: Path, summary: dict) -> dict[str, Path]:
    """summary.json and summary.md into out; their paths."""
    paths = {kind: Path(out) / name for kind, name in SUMMARY.items()}
    runs.atomic_write_text(paths["json"], json.dumps(summary, indent=2) + "\n")
    runs.atomic_write_text(paths["markdown"], summary_markdown(summary))
    return paths


def seed_runs(folder: Path) -> list[Path]:
    """The seed-N run folders of a seeds study that have a finished epoch, by seed."""
    found = [(int(match.group(1)), path) for path in Path(folder).iterdir()
             if (match := SEED_FOLDER.fullmatch(path.name)) and runs.read_history(path)]
    return [path for _, path in sorted(found)]


def report_seeds(arg: str | None) -> Path | None:
    """report.py's --seeds: the folder given (it must exist), else the published budget seeds
    where they exist, else None (the report then has no minutes section). The published seeds
    are named relative to the working folder where they lie inside it, as a user types them, so
    that the report names no one's checkout."""
    if arg is None:
        if not BUDGET_SEEDS.is_dir():
            return None
        inside = BUDGET_SEEDS.is_relative_to(Path.cwd())
        return BUDGET_SEEDS.relative_to(Path.cwd()) if inside else BUDGET_SEEDS
    return runs.find_run(arg)
