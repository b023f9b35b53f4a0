"""The published reference runs: scoring.evaluate_run (what evaluate.py prints) gives the
README's numbers on the shared CIFAR-10 copy, and the budget recipe's seeds are what their
summaries say."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

import runs
from evaluation import scoring
from models.config import Config

REFERENCE = Path(__file__).resolve().parent.parent / "logs" / "reference"
# The budget recipe's seeds: epochs -> (seed 0's test accuracy, the mean over its seeds, how many
# seeds), the numbers README.md tells a grader to expect, to four decimals.
BUDGETS = {10: (0.8329, 0.8337, 3), 20: (0.8545, 0.8519, 3)}
PUBLISHED = {"paper": 0.8117, "tuned": 0.8832,
             **{f"budget-{epochs}/seed-0": seed_0 for epochs, (seed_0, *_) in BUDGETS.items()}}
PRESET = {"paper": "report", "tuned": "tuned",
          **{f"budget-{epochs}/seed-0": "budget" for epochs in BUDGETS}}


@pytest.mark.slow  # a float32 pass over the 10,000 test images per run
@pytest.mark.parametrize("run", sorted(PUBLISHED))
def test_published_weights_give_the_published_accuracy(run, shared_data):
    result = scoring.evaluate_run(str(REFERENCE / run), data_dir=str(shared_data))
    assert round(result["accuracy"], 4) == PUBLISHED[run]
    assert result["n_images"] == 10_000 and result["network"]["params"] == 6_216_114
    published = json.loads((REFERENCE / run / "eval" / "best-test.json").read_text())
    assert result["correct"] == published["correct"]
    assert result["weights_sha256"] == published["weights_sha256"]


@pytest.mark.parametrize("run", sorted(PUBLISHED))
def test_published_runs_hold_what_a_grader_needs(run):
    folder = REFERENCE / run
    assert {p.name for p in folder.iterdir()} >= {"config.json", "history.csv", "best.weights.h5",
                                                  "eval"}
    assert json.loads((folder / "config.json").read_text())["preset"] == PRESET[run]


# The curve's one-seed points (no weights published): epochs -> evaluate.py's test accuracy.
CURVE = {5: 0.7986, 40: 0.8592}


@pytest.mark.parametrize("epochs", sorted(CURVE))
def test_each_curve_point_is_the_recipe_at_its_epochs(epochs):
    run = REFERENCE / f"budget-{epochs}" / "seed-0"
    config = Config.load(run / "config.json")
    assert config == Config.from_settings({"preset": "budget", "epochs": epochs,
                                           "data_dir": config.data_dir})
    assert [row["epoch"] for row in runs.read_history(run)] == list(range(1, epochs + 1))
    scored = json.loads((run / "eval" / "best-test.json").read_text())
    assert (scored["accuracy"], scored["n_images"]) == (CURVE[epochs], 10_000)
    summary = json.loads((run.parent / "summary.json").read_text())
    assert summary["stats"]["test_accuracy"]["mean"] == CURVE[epochs]


@pytest.mark.parametrize("epochs", sorted(BUDGETS))
def test_each_budget_seed_is_the_recipe_at_its_epochs_and_the_summary_is_their_mean(epochs):
    folder, tests, vals = REFERENCE / f"budget-{epochs}", [], []
    for seed in range(BUDGETS[epochs][2]):
        run = folder / f"seed-{seed}"
        assert {p.name for p in run.iterdir()} >= {"config.json", "history.csv", "train.log",
                                                   "eval"}
        config = Config.load(run / "config.json")
        assert config == Config.from_settings({"preset": "budget", "seed": seed,
                                               "epochs": epochs, "data_dir": config.data_dir})
        rows = runs.read_history(run)
        assert [row["epoch"] for row in rows] == list(range(1, epochs + 1))
        log = (run / "train.log").read_text().splitlines()
        assert sum(line.startswith("epoch ") for line in log) == epochs
        scored = json.loads((run / "eval" / "best-test.json").read_text())
        assert scored["n_images"] == 10_000 and scored["which"] == "best"
        tests.append(scored["accuracy"])
        vals.append(runs.best_row(rows)["val_accuracy"])
    stats = json.loads((folder / "summary.json").read_text())["stats"]
    assert stats["test_accuracy"]["mean"] == pytest.approx(statistics.fmean(tests), abs=1e-12)
    assert stats["test_accuracy"]["std"] == pytest.approx(statistics.stdev(tests), abs=1e-12)
    assert stats["best_val_accuracy"]["mean"] == pytest.approx(statistics.fmean(vals), abs=1e-12)
    assert round(stats["test_accuracy"]["mean"], 4) == BUDGETS[epochs][1]  # README's mean
