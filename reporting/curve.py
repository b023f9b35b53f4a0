"""Accuracy against the budget: the test accuracy of the budget recipe trained for N epochs (a
schedule that ends at epoch N), beside what the report's and the tuned recipes had reached at
epoch N of their own, longer schedules (their history.csv). The question a user with N epochs to
spend asks: which recipe, and how far does it get.

The budget runs lie in one folder as budget-N/ (N its epochs), each a run folder or a seeds study
(seed-K/ run folders, study.py seeds). A run's number is evaluate.py's test accuracy of its best
weights where evaluate.py has scored it, else its history's test accuracy at its best epoch.
"""

from __future__ import annotations

import re
from pathlib import Path

import runs
from reporting.pages import percent
from reporting.seed_summary import seed_runs, spread

BUDGET_FOLDER = re.compile(r"budget-(\d+)")


def run_accuracy(folder: Path) -> float:
    """A budget run's test accuracy: evaluate.py's where present, else its best epoch's; a stale
    or broken evaluation is a RunError (runs.read_evaluation)."""
    scored = runs.read_evaluation(folder)
    if scored:
        return scored["accuracy"]
    return runs.best_row(runs.read_history(folder))["test_accuracy"]


def budget_points(folder: Path) -> dict[int, list[float]]:
    """Epochs -> the test accuracies of the budget-N runs in folder (one per seed), by epochs."""
    points = {}
    for path in Path(folder).iterdir():
        match = BUDGET_FOLDER.fullmatch(path.name)
        if not match or not path.is_dir():
            continue
        members = seed_runs(path) or ([path] if runs.read_history(path) else [])
        if members:
            points[int(match.group(1))] = [run_accuracy(run) for run in members]
    return dict(sorted(points.items()))


def accuracy_at(history: list[dict], epoch: int) -> float | None:
    """The test accuracy a run's history holds at the end of that epoch; None where the run is
    shorter."""
    return next((row["test_accuracy"] for row in history if row["epoch"] == epoch), None)


def curve_rows(points: dict[int, list[float]],
               references: list[tuple[str, list[dict]]]) -> tuple[list[str], list[list[str]]]:
    """The table: per budget, the budget recipe's mean ± sample std (seeds) and each reference
    run's test accuracy at that epoch."""
    header = ["epochs", "budget recipe: test accuracy (seeds)",
              *(f"{name} at that epoch of its schedule" for name, _ in references)]
    rows = []
    for epochs, accuracies in points.items():
        stats = spread(accuracies)
        budget = f"{100 * stats['mean']:.2f}%"
        if stats["std"] is not None:
            budget += f" ± {100 * stats['std']:.2f}"
        rows.append([str(epochs), f"{budget} ({stats['n']})",
                     *(percent(accuracy_at(history, epochs)) for _, history in references)])
    return header, rows
