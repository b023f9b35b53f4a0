"""train.py --budget-minutes: the epochs a budget affords, the run's first line, config.json and
a resume that keeps the resolved epochs (training.budget)."""

from __future__ import annotations

import json
import os
import signal

import keras
import numpy as np
import pytest
from test_training import TINY, run_train_py

import runs
from models.config import Config, ConfigError
from training import budget, callbacks
from training.budget import EpochCost, budget_line, epochs_within


def cost(seconds_per_part: float = 5.0, start: float = 0.0) -> EpochCost:
    """An epoch of 5 steps, evaluation and commit of seconds_per_part each: 3 parts."""
    return EpochCost(step_seconds=seconds_per_part / 5, steps=5, eval_seconds=seconds_per_part,
                     commit_seconds=seconds_per_part, start_seconds=start)


def test_epochs_within_count_whole_epochs_after_the_start_and_a_margin():
    epoch = EpochCost(step_seconds=0.1, steps=450, eval_seconds=3.0, commit_seconds=1.0,
                      start_seconds=5.0)
    assert epoch.seconds == pytest.approx(49.0)
    # (1200 s - 10 spent - 5 start) / (49 s x 1.05) = 23.03
    assert epochs_within(20, epoch, spent=10) == 23
    assert epochs_within(20, epoch, spent=10 + 0.04 * 51.45) == 22
    assert budget_line(20, 23, epoch) == "20 minutes here = 23 epochs of 49 s"
    assert budget_line(0.5, 1, epoch) == "0.5 minutes here = 1 epoch of 49 s"


def test_a_budget_that_fits_no_epoch_is_one_line():
    with pytest.raises(ConfigError) as error:
        epochs_within(0.5, cost(10.0), spent=0)
    assert str(error.value) == "0.5 minutes here fit no epoch: one takes 30 s on this machine"


def test_a_budget_and_epochs_together_or_a_budget_of_nothing_are_refused():
    with pytest.raises(ConfigError, match=r"^epochs and budget_minutes both set the run's "
                                          r"length; give one$"):
        Config.from_settings({"epochs": 5, "budget_minutes": 10})
    for minutes in (0.0, -1.0):
        with pytest.raises(ConfigError, match=r"^budget_minutes must be above 0, not "):
            Config(budget_minutes=minutes)
    for minutes in (float("inf"), float("nan")):
        with pytest.raises(ConfigError, match=r"^budget_minutes must be a finite number, not "):
            Config(budget_minutes=minutes)


def test_measure_times_the_steps_evaluation_and_files_of_a_real_network(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.zeros((40, 32, 32, 3), np.float32)
    y = np.zeros(40, np.int64)
    epoch = budget.measure(model, x, y, batch_size=10, steps=7, eval_images=100,
                           eval_batch_size=20, scratch=tmp_path)
    assert epoch.steps == 7
    assert all(value > 0 for value in (epoch.step_seconds, epoch.eval_seconds,
                                       epoch.commit_seconds, epoch.start_seconds))
    assert list(tmp_path.iterdir()) == []  # the probe's files are gone


def stop_after_epoch(monkeypatch, epoch: int) -> None:
    """SIGTERM this process once the epoch has committed, as a scheduler would."""
    commit = callbacks.RunWriter.on_epoch_end

    def commit_then_stop(self, index, logs=None):
        commit(self, index, logs)
        if index + 1 == epoch:
            os.kill(os.getpid(), signal.SIGTERM)
    monkeypatch.setattr(callbacks.RunWriter, "on_epoch_end", commit_then_stop)


@pytest.mark.slow
def test_a_budgeted_run_says_its_epochs_first_saves_them_and_resumes_with_them(
        tiny_cifar, tmp_path, monkeypatch, capsys):
    # 1 minute, epochs of 15 s: (60 s - what the run spent before) / 15.75 s makes 3 epochs.
    monkeypatch.setattr(budget, "measure", lambda *args, **kwargs: cost(5.0))
    command = ["--data-dir", str(tiny_cifar), "--run", "timed", "--out", str(tmp_path),
               "--budget-minutes", "1", "--limit", "100", "--tensorboard", "0", *TINY]
    run = tmp_path / "timed"
    with monkeypatch.context() as patch:
        stop_after_epoch(patch, 1)
        status, _ = run_train_py(patch, capsys, *command)
    assert status == 128 + signal.SIGTERM
    saved = json.loads((run / runs.CONFIG).read_text())
    assert (saved["epochs"], saved["budget_minutes"]) == (3, 1.0)
    log = (run / "train.log").read_text().splitlines()
    assert log[0] == "1 minutes here = 3 epochs of 15 s"
    assert log[1].startswith(f"run {run}: 100 train / 50 val / 100 test images")
    assert log[1].endswith("epochs 1..3")

    def no_measuring(*args, **kwargs):
        raise AssertionError("a resumed run measures nothing")
    monkeypatch.setattr(budget, "measure", no_measuring)
    status, lines = run_train_py(monkeypatch, capsys, *command, "--resume")
    assert status == 0, lines
    assert [row["epoch"] for row in runs.read_history(run)] == [1, 2, 3]
    assert json.loads((run / runs.CONFIG).read_text())["epochs"] == 3
    resumed = (run / "train.log").read_text().splitlines()[len(log):]
    assert resumed[0].endswith("epochs 2..3")  # no new budget line: nothing was measured


@pytest.mark.slow
def test_a_budget_with_epochs_is_one_line_from_train_py(tiny_cifar, tmp_path, monkeypatch,
                                                        capsys):
    status, lines = run_train_py(monkeypatch, capsys, "--data-dir", str(tiny_cifar), "--out",
                                 str(tmp_path), "--budget-minutes", "5", "--epochs", "3", *TINY)
    assert (status, lines) == (2, ["error: epochs and budget_minutes both set the run's length; "
                                   "give one"])
    assert list(tmp_path.iterdir()) == []
