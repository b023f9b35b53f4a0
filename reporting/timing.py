"""Minutes to accuracy: when a run first reached a test accuracy, in the wall-clock minutes its
history.csv records (the seconds column, summed epoch by epoch), so that recipes whose epochs
cost differently compare by what a user waits for rather than by epochs."""

from __future__ import annotations

from itertools import accumulate
from pathlib import Path

from reporting.pages import Table, markdown_block

THRESHOLDS = (0.85, 0.87, 0.88)
# history.csv holds float32 accuracies: 8,800 right of 10,000 is 0.8799999952..., which must
# count as reaching 0.88. The margin is far below one image in a hundred thousand.
MARGIN = 1e-6


def cumulative_minutes(rows: list[dict]) -> list[float]:
    """Per history row, the minutes from the start of training to the end of that epoch."""
    return [seconds / 60 for seconds in accumulate(row["seconds"] for row in rows)]


def minutes_to_accuracy(rows: list[dict], thresholds: tuple[float, ...] = THRESHOLDS
                        ) -> dict[float, float | None]:
    """Per threshold, the minutes at the end of the first epoch whose test accuracy reached it
    (an accuracy equal to the threshold reaches it); None where no epoch did."""
    minutes = cumulative_minutes(rows)
    return {threshold: next((m for row, m in zip(rows, minutes, strict=True)
                             if row["test_accuracy"] >= threshold - MARGIN), None)
            for threshold in thresholds}


def threshold_name(threshold: float) -> str:
    """0.85 -> "85%", 0.875 -> "87.5%"."""
    return f"{round(100 * threshold, 6):g}%"


def minutes_cell(minutes: float | None) -> str:
    return "not reached" if minutes is None else f"{minutes:.1f}"


def minutes_rows(named: list[tuple[str, list[dict]]],
                 thresholds: tuple[float, ...] = THRESHOLDS) -> Table:
    """One row per (name, history rows): its epochs, minutes in all, last test accuracy and the
    minutes to each threshold."""
    header = ["run", "epochs", "minutes", "last test accuracy",
              *(f"minutes to {threshold_name(t)} test" for t in thresholds)]
    rows = [[name, str(len(history)), minutes_cell(cumulative_minutes(history)[-1]),
             f"{100 * history[-1]['test_accuracy']:.2f}%",
             *map(minutes_cell, minutes_to_accuracy(history, thresholds).values())]
            for name, history in named]
    return Table(header, rows)


def minutes_table(named: list[tuple[str, list[dict]]],
                  thresholds: tuple[float, ...] = THRESHOLDS) -> str:
    """minutes_rows as a Markdown table, for the README or a terminal."""
    return "\n".join(markdown_block(minutes_rows(named, thresholds), Path()))
