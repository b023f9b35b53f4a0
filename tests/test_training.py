"""training: a run's folder and config (new or resumed), the optimizer, the callbacks, devices,
stopping on signals; and train.py end to end: the run folder, resuming after a kill, a busy
folder, SIGTERM, multi-device strategies."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import runpy
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from conftest import ROOT, kill_after_epochs, run_script
from test_tensorboard import assert_each_step_once

import runs
import runs.files
from models.config import PRESETS, Config, ConfigError
from models.losses import make_loss
from models.network import build_from_config
from models.optimizers import FusedAdam, FusedAdamW
from runs.weights import load_weights
from training import devices, trainer
from training.callbacks import (
    ResumablePlateau,
    RunWriter,
    history_row,
    make_callbacks,
    save_epoch,
    summary_line,
)
from training.devices import (
    is_chief,
    make_strategy,
    precision_warning,
    resolve_precision,
    writes_run_folder,
)
from training.setup import build_compiled, make_optimizer
from training.stopping import Stopped, deferred, stop_on_signals
from training.trainer import prepare_run, train

TINY = ("--val-size", "50", "--batch-size", "50", "--precision", "fp32", "--verbose", "0")


class ZipOnly:
    """Stands in for a model in runs.save_checkpoint: an empty archive, the run state added."""

    def save(self, path: str) -> None:
        zipfile.ZipFile(path, "w").close()


def logs(epoch: int, val_accuracy: float) -> dict:
    return {"learning_rate": 1e-3, "loss": 2.0, "accuracy": 0.25, "val_loss": 1.5 - epoch / 10,
            "val_accuracy": val_accuracy, "test_loss": 1.6, "test_accuracy": 0.3, "seconds": 2.5}


def saved_run(folder: Path, config: Config, epoch: int) -> Path:
    """A run folder as training leaves it, without training: config.json, a checkpoint and
    history.csv of `epoch` epochs."""
    folder.mkdir(parents=True)
    config.save(folder / runs.CONFIG, {"data_source": "somewhere"})
    history = [history_row(e, logs(e, 0.1 * e)) for e in range(1, epoch + 1)]
    runs.save_checkpoint(ZipOnly(), str(folder / runs.CHECKPOINT),
                         {"epoch": epoch, "history": history})
    runs.write_history(folder / runs.HISTORY, history)
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of a folder with its bytes: what "left as it was" compares."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# ---------------------------------------------------------------------------------------------
# A run's folder and config


def test_a_new_run_takes_defaults_then_preset_then_settings(tmp_path):
    with prepare_run({}, out=tmp_path, name="plain") as run:
        assert (run.folder, run.config, run.state) == (tmp_path / "plain", Config(),
                                                       {"epoch": 0, "history": []})
        assert [p.name for p in run.folder.iterdir()] == [runs.LOCK]  # the claim, nothing else
    assert not (tmp_path / "plain").exists()  # released before training: nothing left
    with prepare_run({"preset": "tuned", "epochs": 5, "flip": False}, out=tmp_path,
                     name="t") as tuned:
        assert tuned.config == Config(**{**PRESETS["tuned"], "preset": "tuned", "epochs": 5,
                                         "flip": False})
    with prepare_run({}, out=tmp_path) as dated:
        assert dated.folder.name[:2] == "20"  # named by date and time


def test_a_new_run_refuses_a_folder_that_holds_one(tmp_path):
    folder = saved_run(tmp_path / "x", Config(), 1)
    before = snapshot(folder)
    with pytest.raises(runs.RunError) as error:
        prepare_run({}, out=tmp_path, name="x")
    assert str(error.value) == (f"{tmp_path / 'x'} already holds a run: pass --resume to "
                                "continue it, or another --run")
    assert snapshot(folder) == before  # its claim released, nothing else touched


def test_a_second_training_of_a_claimed_folder_is_refused_naming_the_pid(tmp_path):
    busy = (f"{tmp_path / 'x'} is in use by another training (pid {os.getpid()}); wait for it "
            "to end, or pass another --run")
    folder = saved_run(tmp_path / "x", Config(epochs=5), 2)
    with prepare_run({}, out=tmp_path, name="x", resume=True):
        for resume in (False, True):
            with pytest.raises(runs.RunError) as error:
                prepare_run({}, out=tmp_path, name="x", resume=resume)
            assert str(error.value) == busy
    with prepare_run({}, out=tmp_path, name="x", resume=True) as run:  # free again
        assert run.state["epoch"] == 2
    assert runs.LOCK not in snapshot(folder)


def test_runs_named_in_the_same_second_get_folders_of_their_own(tmp_path, monkeypatch):
    monkeypatch.setattr(trainer.time, "strftime", lambda pattern: "20250102-030405")
    with prepare_run({}, out=tmp_path) as first, prepare_run({}, out=tmp_path) as second:
        assert (first.folder.name, second.folder.name) == ("20250102-030405",
                                                           "20250102-030405-2")


def test_resume_accepts_the_original_settings_and_updates_epochs_and_data(tmp_path):
    folder = saved_run(tmp_path / "x", Config(limit=1000, epochs=5, flip=False, cutout=8), 3)
    before = snapshot(folder)
    original = {"limit": 1000, "flip": False, "cutout": 8, "seed": 0, "precision": "auto"}
    with prepare_run({**original, "epochs": 9, "data_dir": "/new/copy"}, out=tmp_path,
                     name="x", resume=True) as run:
        assert run.config == Config(limit=1000, epochs=9, flip=False, cutout=8,
                                    data_dir="/new/copy")
        assert run.state == runs.read_checkpoint_state(folder / runs.CHECKPOINT)
        assert run.state["epoch"] == 3
        assert run.runtime == {"data_source": "somewhere"}  # kept as the run started
    # config.json is rewritten by train(), once the checkpoint is restored, not before
    assert snapshot(folder) == before


def test_resume_refuses_a_differing_value_naming_the_flag_and_both_values(tmp_path):
    folder = saved_run(tmp_path / "x", Config(limit=1000), 3)

    def refusal(settings: dict) -> str:
        with pytest.raises(ConfigError) as error:
            prepare_run(settings, out=tmp_path, name="x", resume=True)
        return str(error.value)

    start = f"--resume continues {folder} with its config.json; "
    assert refusal({"limit": 500}) == start + "--limit 500 differs from its 1000"
    assert refusal({"learning_rate": 0.1, "flip": False, "xla": True}) == start + (
        "--learning-rate 0.1 differs from its 0.001; --no-flip differs from its flip=true; "
        "--xla differs from its xla=false")
    assert refusal({"preset": "tuned"}) == start + "--preset tuned differs from its report"
    assert Config.load(folder / runs.CONFIG) == Config(limit=1000)  # nothing rewritten
    other = saved_run(tmp_path / "y", Config(), 1)
    with pytest.raises(ConfigError) as error:
        prepare_run({"limit": 500}, out=tmp_path, name="y", resume=True)
    assert str(error.value).endswith("; --limit 500 differs from its none")
    assert other.exists()


def test_resume_needs_a_checkpoint(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(runs.RunError) as error:
        prepare_run({}, out=tmp_path, name="x", resume=True)
    assert str(error.value) == f"nothing to resume in {tmp_path / 'x'}: it has no checkpoint.keras"


def test_resume_refuses_fewer_epochs_a_finished_run_and_a_new_cosine_length(tmp_path):
    def refusal(name: str, settings: dict) -> str:
        before = snapshot(tmp_path / name)
        with pytest.raises((runs.RunError, ConfigError)) as error:
            prepare_run(settings, out=tmp_path, name=name, resume=True)
        assert snapshot(tmp_path / name) == before  # config.json not rewritten
        return f"{type(error.value).__name__}: {error.value}"

    done = saved_run(tmp_path / "done", Config(epochs=4), 4)
    assert refusal("done", {}) == (f"RunError: {done} has finished all 4 epochs; pass --epochs "
                                   "M (more than 4) to train further")
    assert refusal("done", {"epochs": 4}) == refusal("done", {})
    assert refusal("done", {"epochs": 3}) == (
        f"ConfigError: {done} has done 4 epochs already, more than --epochs 3; pass a larger "
        "--epochs to train further")
    with prepare_run({"epochs": 6}, out=tmp_path, name="done", resume=True) as run:
        assert run.config.epochs == 6 and run.state["epoch"] == 4
    cosine = saved_run(tmp_path / "cosine", Config(schedule="cosine", epochs=4), 2)
    assert refusal("cosine", {"epochs": 6}) == (
        f"ConfigError: --epochs 6 would change the length of {cosine}'s cosine schedule, fixed "
        "at 4 epochs when it started (its rate would jump); start a new run to train longer")
    assert refusal("cosine", {"epochs": 3}).startswith("ConfigError: --epochs 3 would change")
    with prepare_run({"epochs": 4}, out=tmp_path, name="cosine", resume=True) as run:
        assert run.config.epochs == 4  # its own length: resumed
    ended = saved_run(tmp_path / "ended", Config(schedule="cosine", epochs=4), 4)
    assert refusal("ended", {}) == (f"RunError: {ended} has finished all 4 epochs; its cosine "
                                    "schedule ends there; start a new run to train longer")


def test_a_corrupt_or_missing_checkpoint_or_config_is_one_line_and_changes_nothing(tmp_path):
    folder = saved_run(tmp_path / "x", Config(epochs=5), 2)
    checkpoint, config = folder / runs.CHECKPOINT, folder / runs.CONFIG
    good = snapshot(folder)

    def refusal(broken: dict[str, bytes | None]) -> str:
        for name, data in {**good, **broken}.items():
            if data is None:
                (folder / name).unlink(missing_ok=True)
            else:
                (folder / name).write_bytes(data)
        with pytest.raises((runs.RunError, ConfigError)) as error:
            prepare_run({"epochs": 9}, out=tmp_path, name="x", resume=True)
        assert snapshot(folder) == {k: v for k, v in {**good, **broken}.items() if v is not None}
        return str(error.value)

    cannot = "its run cannot be resumed"
    assert refusal({runs.CHECKPOINT: b"not a zip"}) == (
        f"{checkpoint} is truncated or corrupt (File is not a zip file); {cannot}")
    assert refusal({runs.CHECKPOINT: good[runs.CHECKPOINT][:40]}).startswith(
        f"{checkpoint} is truncated or corrupt (")
    empty = tmp_path / "empty.zip"
    zipfile.ZipFile(empty, "w").close()
    assert refusal({runs.CHECKPOINT: empty.read_bytes()}) == (
        f"{checkpoint} holds no run state; {cannot}")
    assert refusal({runs.CHECKPOINT: None}) == (
        f"nothing to resume in {folder}: it has no checkpoint.keras")
    assert refusal({runs.CONFIG: b'{"epochs": '}) == (
        f"{config} cannot be read as a run's config (Expecting value: line 1 column 12 "
        "(char 11))")
    assert refusal({runs.CONFIG: b'{"epochs": 0}'}) == (
        f"{config}: epochs must be at least 1, not 0")
    assert refusal({runs.CONFIG: None}) == f"nothing to resume in {folder}: it has no config.json"


def test_a_checkpoint_that_cannot_be_restored_leaves_config_json_as_it_was(tmp_path, tiny_cifar):
    # The stand-in checkpoint has a run state but no weights: prepare_run reads it, train()
    # fails to restore it, and must do so before it rewrites config.json with the new --epochs.
    tiny = {"data_dir": str(tiny_cifar), "val_size": 50, "batch_size": 50, "limit": 100,
            "precision": "fp32", "batchnorm": "none"}
    folder = saved_run(tmp_path / "x", Config(**tiny, epochs=3), 2)
    before = snapshot(folder)
    with (prepare_run({"epochs": 5}, out=tmp_path, name="x", resume=True) as run,
          pytest.raises(runs.RunError) as error):
        train(run, verbose=0, log=lambda line: None)
    assert str(error.value).startswith(f"{folder / runs.CHECKPOINT} cannot be restored into "
                                       "this run's network (")
    assert str(error.value).endswith("); its run cannot be resumed")
    assert "\n" not in str(error.value)
    assert snapshot(folder) == before


def test_a_relative_data_dir_is_stored_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with prepare_run({"data_dir": "data/cifar"}, out="runs", name="x") as run:
        assert run.config.data_dir == str(Path.cwd() / "data" / "cifar")
    saved_run(tmp_path / "runs" / "y", Config(epochs=5), 1)
    with prepare_run({"data_dir": "../copy"}, out="runs", name="y", resume=True) as run:
        assert run.config.data_dir == str(Path.cwd().parent / "copy")


def test_a_run_name_that_is_not_one_folder_name_is_refused_before_anything_is_made(tmp_path):
    out = tmp_path / "logs"
    for name in ("../x", str(tmp_path / "elsewhere"), ".", "a/b"):
        for resume in (False, True):
            with pytest.raises(runs.RunError) as error:
                prepare_run({}, out=out, name=name, resume=resume)
            assert str(error.value) == (f"a run name is one folder name (the run goes into "
                                        f"--out {out}), not {name!r}; pass --out for another "
                                        "place")
    assert list(tmp_path.iterdir()) == []  # neither OUT/.. nor OUT nor an absolute path touched


def early_stopped_run(folder: Path, config: Config, *, epoch: int, best_epoch: int) -> Path:
    saved_run(folder, config, epoch)
    state = runs.read_checkpoint_state(folder / runs.CHECKPOINT)
    runs.save_checkpoint(ZipOnly(), str(folder / runs.CHECKPOINT),
                         {**state, "best_epoch": best_epoch})
    return folder


def test_resuming_an_early_stopped_run_says_so_instead_of_training_one_more_epoch(tmp_path):
    stopped = early_stopped_run(tmp_path / "stopped", Config(epochs=20, early_stop=3), epoch=7,
                                best_epoch=4)
    before = snapshot(stopped)
    for settings in ({}, {"epochs": 30}):
        with pytest.raises(runs.RunError) as error:
            prepare_run(settings, out=tmp_path, name="stopped", resume=True)
        assert str(error.value) == (f"{stopped} stopped early at epoch 7: no better validation "
                                    "accuracy for 3 epochs after epoch 4; start a new run to "
                                    "train further")
    assert snapshot(stopped) == before
    # Killed one epoch before its early stop: it resumes.
    early_stopped_run(tmp_path / "going", Config(epochs=20, early_stop=3), epoch=6, best_epoch=4)
    with prepare_run({}, out=tmp_path, name="going", resume=True) as run:
        assert run.state["epoch"] == 6


# ---------------------------------------------------------------------------------------------
# Optimizer, loss


def test_optimizer_classes_follow_the_config():
    assert type(make_optimizer(Config(), 10)) is FusedAdam
    adamw = make_optimizer(Config(optimizer="adamw", weight_decay=0.05), 10)
    assert type(adamw) is FusedAdamW and adamw.weight_decay == pytest.approx(0.05)
    sgd = make_optimizer(Config(optimizer="sgd", momentum=0.8), 10)
    assert type(sgd) is keras.optimizers.SGD and sgd.nesterov and sgd.momentum == 0.8
    assert type(make_optimizer(Config(optimizer="rmsprop"), 10)) is keras.optimizers.RMSprop
    assert make_optimizer(Config(), 10).weight_decay is None  # 0 means no decay at all


def rate_at(optimizer: keras.optimizers.Optimizer, step: int) -> float:
    optimizer.iterations.assign(step)
    return float(optimizer.learning_rate)


def test_cosine_schedule_warms_up_from_a_tenth_then_decays_to_zero():
    config = Config(schedule="cosine", learning_rate=2e-3, warmup_epochs=2, epochs=10)
    optimizer = make_optimizer(config, steps_per_epoch=5)
    rate = [rate_at(optimizer, step) for step in (0, 5, 10, 30, 50)]
    assert rate[0] == pytest.approx(2e-4) and rate[2] == pytest.approx(2e-3)
    assert rate[0] < rate[1] < rate[2] > rate[3] > rate[4]
    assert rate[4] == pytest.approx(0.0, abs=1e-9)
    plain = make_optimizer(Config(schedule="cosine", learning_rate=1e-3, epochs=4), 5)
    assert rate_at(plain, 0) == pytest.approx(1e-3)  # no warm-up: the full rate at once
    assert rate_at(make_optimizer(Config(), 5), 100) == pytest.approx(1e-3)  # plateau: constant


def test_a_fractional_warm_up_lasts_its_share_of_an_epoch_in_steps():
    config = Config(schedule="cosine", learning_rate=2e-3, warmup_epochs=0.25, epochs=2)
    optimizer = make_optimizer(config, steps_per_epoch=20)  # 5 warm-up steps, then 35 of decay
    assert rate_at(optimizer, 0) == pytest.approx(2e-4)
    assert rate_at(optimizer, 4) < rate_at(optimizer, 5) == pytest.approx(2e-3)
    assert rate_at(optimizer, 5 + 35 // 2) == pytest.approx(1e-3, rel=0.05)  # cosine's midpoint
    assert rate_at(optimizer, 40) == pytest.approx(0.0, abs=1e-9)


def test_build_compiled_uses_the_config_loss():
    model = build_compiled(Config(label_smoothing=0.1), steps_per_epoch=1)
    assert model.loss.label_smoothing == 0.1
    assert isinstance(build_compiled(Config(), 1).loss, keras.losses.SparseCategoricalCrossentropy)


def test_label_smoothing_loss_matches_its_definition():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], "float32")
    labels = np.array([0, 2])
    smoothed = 0.1 / 3 + 0.9 * np.eye(3)[labels]
    expected = np.mean(-np.sum(smoothed * np.log(probabilities), axis=1))
    assert float(make_loss(0.1)(labels, probabilities)) == pytest.approx(expected, rel=1e-5)
    assert float(make_loss(0.0)(labels, probabilities)) == pytest.approx(
        -np.mean(np.log([0.7, 0.8])), rel=1e-5)


# ---------------------------------------------------------------------------------------------
# Callbacks


def test_plateau_counters_survive_a_resume():
    plateau = ResumablePlateau({"wait": 3, "best": 0.75, "cooldown": 1}, monitor="val_loss")
    plateau.on_train_begin()
    assert (plateau.wait, plateau.best, plateau.cooldown_counter) == (3, 0.75, 1)
    assert plateau.state() == {"wait": 3, "best": 0.75, "cooldown": 1}
    fresh = ResumablePlateau(None, monitor="val_loss")
    fresh.on_train_begin()
    assert (fresh.wait, fresh.cooldown_counter) == (0, 0)


def test_callbacks_come_in_the_order_they_must_run(tmp_path):
    config = Config()
    state = {"epoch": 0, "history": [], "plateau": {"wait": 2, "best": 1.0, "cooldown": 0}}
    recorder, plateau, writer = make_callbacks(config, folder=tmp_path, test_data=None,
                                               state=state)
    assert writer.plateau is plateau and plateau.saved_state == state["plateau"]
    assert recorder.test_data is None
    cosine = make_callbacks(Config(schedule="cosine"), folder=tmp_path, test_data=None,
                            state={"epoch": 0, "history": []})
    assert [type(c).__name__ for c in cosine] == ["EpochRecorder", "RunWriter"]


def test_run_writer_keeps_the_best_epoch_and_stops_early(tmp_path):
    lines: list[str] = []
    state = {"epoch": 0, "history": []}
    writer = RunWriter(Config(epochs=10, early_stop=2), folder=tmp_path, state=state, chief=False,
                       log=lines.append)
    writer.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    writer.model.stop_training = False  # as fit() starts it
    for epoch, accuracy in enumerate([0.4, 0.6, 0.6, 0.5]):
        writer.on_epoch_end(epoch, logs(epoch, accuracy))
        if writer.model.stop_training:
            break
    assert state["epoch"] == 4 and state["best_epoch"] == 2 and state["best_val_accuracy"] == 0.6
    assert [row["epoch"] for row in state["history"]] == [1, 2, 3, 4]
    assert [line.endswith("*best") for line in lines[:4]] == [True, True, False, False]
    assert lines[4] == "early stop: no better validation accuracy for 2 epochs"
    assert not list(tmp_path.iterdir())  # not the chief: nothing written


def test_a_non_finite_loss_stops_the_run_before_its_epoch_is_kept(tmp_path):
    state = {"epoch": 0, "history": []}
    writer = RunWriter(Config(epochs=10), folder=tmp_path, state=state, chief=False,
                       log=lambda line: None)
    writer.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    writer.on_epoch_end(0, logs(0, 0.4))
    for which, value in (("loss", float("nan")), ("val_loss", float("inf"))):
        with pytest.raises(runs.RunError) as error:
            writer.on_epoch_end(1, {**logs(1, 0.9), which: value})
        shown = {"loss": "train loss", "val_loss": "val loss"}[which]
        assert str(error.value) == (
            f"the {shown} is {value} at epoch 2; the run stops and epoch 1 is kept: start a new "
            f"run with a lower learning rate (this epoch's was 1.00e-03)")
    assert state["epoch"] == 1 and state["best_epoch"] == 1 and len(state["history"]) == 1


@pytest.mark.slow
def test_train_py_stops_at_a_nan_loss_with_one_line(tiny_cifar, tmp_path, monkeypatch, capsys):
    status, lines = run_train_py(monkeypatch, capsys, "--data-dir", str(tiny_cifar), "--out",
                                 str(tmp_path), "--run", "nan", "--learning-rate", "1e30",
                                 "--epochs", "3", "--tensorboard", "0", *TINY)
    assert (status, lines) == (2, [
        "error: the train loss is nan at epoch 1; the run stops and nothing is saved: start a "
        "new run with a lower learning rate (this epoch's was 1.00e+30)"])
    assert sorted(p.name for p in (tmp_path / "nan").iterdir()) == ["config.json", "train.log"]


def test_history_row_and_summary_line():
    row = history_row(3, logs(3, np.float32(0.5)))
    assert list(row) == list(runs.HISTORY_COLUMNS) and row["epoch"] == 3
    assert type(row["val_accuracy"]) is float
    assert summary_line(row, 10, improved=True) == (
        "epoch 3/10  lr 1.00e-03  train 2.0000/0.2500  val 1.2000/0.5000  test 1.6000/0.3000  "
        "2.5s  *best")
    assert not summary_line(row, 10, improved=False).endswith("*best")


def test_save_epoch_commits_weights_checkpoint_and_history(tmp_path):
    config = Config(batchnorm="none")
    model = build_compiled(config, 1)
    twin = build_compiled(config, 1)
    twin.set_weights(model.get_weights())
    state = {"epoch": 1, "history": [history_row(1, logs(1, 0.5))], "best_epoch": 1}
    save_epoch(model, twin, folder=tmp_path, state=state, improved=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint.keras", "history.csv", "last.weights.h5"]
    assert runs.read_history(tmp_path) == state["history"]
    assert runs.read_checkpoint_state(tmp_path / runs.CHECKPOINT) == state
    save_epoch(model, twin, folder=tmp_path, state=state, improved=True)
    assert (tmp_path / "best.weights.h5").is_file()


def fake_disk(monkeypatch, free) -> None:
    """shutil.disk_usage reports free(path) bytes free (a number or a function of the path)."""
    def usage(path):
        room = free(Path(path)) if callable(free) else free
        return shutil._ntuple_diskusage(10**12, 10**12 - room, room)

    monkeypatch.setattr(runs.files.shutil, "disk_usage", usage)


def test_a_commit_the_disk_has_no_room_for_leaves_the_epoch_before_whole(tmp_path,
                                                                         monkeypatch):
    config = Config(batchnorm="none")
    model, twin = build_compiled(config, 1), build_from_config(config)
    model.optimizer.build(model.trainable_variables)
    state = {"epoch": 1, "history": [history_row(1, logs(1, 0.5))], "best_epoch": 1}
    save_epoch(model, twin, folder=tmp_path, state=state, improved=True)
    committed = snapshot(tmp_path)
    weights = runs.model_bytes(twin)
    # Room for the last weights (checked first), not for the best ones nor the checkpoint.
    fake_disk(monkeypatch, lambda path: 2 * weights if not list(tmp_path.glob(".staged-*"))
              else 0)
    state = {**state, "epoch": 2, "history": [*state["history"], history_row(2, logs(2, 0.6))]}
    with pytest.raises(OSError) as error:
        save_epoch(model, twin, folder=tmp_path, state=state, improved=True)
    assert error.value.errno == errno.ENOSPC
    assert error.value.filename == str(tmp_path / runs.staged_name(2, "best"))
    assert snapshot(tmp_path) == committed  # no temporary file, no staged weights of epoch 2


class Killed(BaseException):
    """Stands in for a kill -9 at one step of an epoch's commit."""


def small_model() -> keras.Model:
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])


def weights_epoch(path: Path) -> int:
    """The epoch whose weights a file holds: every value of epoch e's weights is e."""
    model = small_model()
    load_weights(model, path)
    values = np.unique(np.concatenate([w.ravel() for w in model.get_weights()]))
    assert len(values) == 1
    return int(values[0])


def finish_epoch(model: keras.Model, folder: Path, state: dict, epoch: int,
                 val_accuracy: float) -> None:
    """What RunWriter does at the end of an epoch, with the weights of epoch e all e."""
    model.set_weights([np.full_like(w, epoch) for w in model.get_weights()])
    state["history"].append(history_row(epoch, logs(epoch, val_accuracy)))
    state["epoch"] = epoch
    improved = val_accuracy > state.get("best_val_accuracy", -1.0)
    if improved:
        state["best_val_accuracy"], state["best_epoch"] = val_accuracy, epoch
    save_epoch(model, model, folder=folder, state=state, improved=improved)


def assert_published_weights_are_listed(folder: Path) -> None:
    """best and last weights come from epochs that history.csv and the checkpoint both list."""
    listed = {row["epoch"] for row in runs.read_history(folder)}
    committed = runs.read_checkpoint_state(folder / runs.CHECKPOINT)["epoch"]
    for which in ("best", "last"):
        epoch = weights_epoch(folder / runs.WEIGHTS[which])
        assert epoch in listed and epoch <= committed, (which, epoch, listed, committed)


def assert_committed(folder: Path) -> None:
    """The folder exactly as its checkpoint committed it: history.csv, last and best weights."""
    state = runs.read_checkpoint_state(folder / runs.CHECKPOINT)
    rows = runs.read_history(folder)
    assert rows == state["history"] and len(rows) == state["epoch"]
    assert weights_epoch(folder / runs.WEIGHTS["last"]) == state["epoch"]
    assert weights_epoch(folder / runs.WEIGHTS["best"]) == runs.best_row(rows)["epoch"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "best.weights.h5", "checkpoint.keras", "config.json", "history.csv", "last.weights.h5"]


def test_a_kill_at_any_step_of_a_commit_never_publishes_weights_the_history_lacks(
        tmp_path, monkeypatch):
    folder = tmp_path / "x"
    folder.mkdir()
    Config(epochs=10).save(folder / runs.CONFIG, {})
    model, state = small_model(), {"epoch": 0, "history": []}
    finish_epoch(model, folder, state, 1, 0.4)
    finish_epoch(model, folder, state, 2, 0.6)
    assert_committed(folder)

    def boom(*args, **kwargs):
        raise Killed

    def resumed_state() -> dict:
        with prepare_run({}, out=tmp_path, name="x", resume=True) as run:  # runs.recover
            return run.state

    # Killed before the checkpoint: epoch 3 is not committed; resuming drops its staged files,
    # and the redone epoch 3, no better, leaves best.weights.h5 at epoch 2.
    with monkeypatch.context() as patch, pytest.raises(Killed):
        patch.setattr(runs, "save_checkpoint", boom)
        finish_epoch(model, folder, state, 3, 0.7)
    assert_published_weights_are_listed(folder)
    assert weights_epoch(folder / "best.weights.h5") == 2
    state = resumed_state()
    assert state["epoch"] == 2
    assert_committed(folder)
    finish_epoch(model, folder, state, 3, 0.5)
    assert_committed(folder)
    assert weights_epoch(folder / "best.weights.h5") == 2
    # Killed after the checkpoint, before history.csv, then before the renames: epoch 4, then 5
    # are committed; the weights stay those of listed epochs, and resuming publishes them.
    for epoch, step in ((4, "write_history"), (5, "publish_weights")):
        with monkeypatch.context() as patch, pytest.raises(Killed):
            patch.setattr(runs, step, boom)
            finish_epoch(model, folder, state, epoch, 0.5 + epoch / 10)
        assert_published_weights_are_listed(folder)
        assert weights_epoch(folder / "last.weights.h5") == epoch - 1
        state = resumed_state()
        assert state["epoch"] == epoch
        assert_committed(folder)
        assert weights_epoch(folder / "best.weights.h5") == epoch


# ---------------------------------------------------------------------------------------------
# Devices and precision


def test_auto_precision_follows_the_hardware(monkeypatch):
    assert resolve_precision("bf16") == "bf16"
    monkeypatch.setattr(devices, "has_gpu", lambda: True)
    assert resolve_precision("auto") == "fp16"
    monkeypatch.setattr(devices, "has_gpu", lambda: False)
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: True)
    assert resolve_precision("auto") == "bf16"
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: False)
    assert resolve_precision("auto") == "fp32"


def test_an_emulated_precision_is_a_warning_line(monkeypatch):
    monkeypatch.setattr(devices, "has_gpu", lambda: False)
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: False)
    assert precision_warning("fp16") == (
        "warning: fp16 is emulated on a CPU (no GPU found): it trains several times slower than "
        "fp32; --precision auto picks the fastest this machine has")
    assert precision_warning("bf16") == (
        "warning: bf16 is emulated on a CPU without AVX512-BF16 or AMX (no GPU found): it trains "
        "several times slower than fp32; --precision auto picks the fastest this machine has")
    assert precision_warning("fp32") is None
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: True)
    assert precision_warning("bf16") is None and precision_warning("fp16") is not None
    monkeypatch.setattr(devices, "has_gpu", lambda: True)
    assert precision_warning("fp16") is None and precision_warning("bf16") is None


def test_auto_strategy_is_none_on_one_device(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    if devices.has_gpu():
        pytest.skip("a machine with GPUs may mirror over them")
    assert make_strategy("auto") is None


def test_only_the_chief_writes_the_run_folder(monkeypatch, tmp_path):
    assert is_chief(None)
    assert is_chief({"cluster": {"worker": ["a:1"]}})
    assert is_chief({"task": {"type": "chief", "index": 0}})
    workers = {"worker": ["a:1", "b:2"]}
    assert is_chief({"cluster": workers, "task": {"type": "worker", "index": 0}})
    assert not is_chief({"cluster": workers, "task": {"type": "worker", "index": 1}})
    assert not is_chief({"cluster": {**workers, "chief": ["c:3"]},
                         "task": {"type": "worker", "index": 0}})
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": workers,
                                                "task": {"type": "worker", "index": 1}}))
    assert not writes_run_folder("auto") and not writes_run_folder("multiworker")
    assert writes_run_folder("mirrored")  # TF_CONFIG means nothing to a mirrored run
    run = prepare_run({}, out=tmp_path, name="x")
    assert not run.chief and run.claim is None and not (tmp_path / "x").exists()


TF_CONFIG_HELP = "describe the cluster in it, or unset it to train on one machine"


@pytest.mark.parametrize(("text", "message"), [
    ("{cluster: 1}", "TF_CONFIG is not JSON (Expecting property name enclosed in double quotes "
                     "at character 1 of '{cluster: 1}')"),
    ("", "TF_CONFIG is not JSON (Expecting value at character 0 of '')"),
    ("[1, 2]", "TF_CONFIG holds a JSON list, not an object with a cluster and a task"),
    ('{"cluster": {"worker": "a:1"}}', 'TF_CONFIG has a "cluster" that is not an object of '
                                       'host lists'),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}',
     "TF_CONFIG names task worker 3, which its cluster lacks (worker: 1)"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": "0"}}',
     'TF_CONFIG has a task index "0", not a number from 0'),
])
def test_a_malformed_tf_config_is_one_line(monkeypatch, tmp_path, text, message):
    monkeypatch.setenv("TF_CONFIG", text)
    with pytest.raises(ConfigError) as error:
        prepare_run({}, out=tmp_path, name="x")
    assert str(error.value) == f"{message}; {TF_CONFIG_HELP}"
    assert not (tmp_path / "x").exists()
    with pytest.raises(ConfigError) as error:
        make_strategy("multiworker")
    assert str(error.value) == f"{message}; {TF_CONFIG_HELP}"


# ---------------------------------------------------------------------------------------------
# Stopping on signals


def wait_for_a_signal() -> None:
    for _ in range(40):  # Python runs a signal's handler between two bytecodes of this loop
        time.sleep(0.005)


def test_sigterm_and_ctrl_c_stop_at_once_but_wait_for_a_commit():
    previous = signal.getsignal(signal.SIGTERM)
    with stop_on_signals():
        for signum, status in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
            with pytest.raises(Stopped) as stop:
                os.kill(os.getpid(), signum)
                wait_for_a_signal()
            assert (stop.value.signum, stop.value.exit_status) == (signum, status)
        done = []
        with pytest.raises(Stopped) as stop, deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            wait_for_a_signal()
            done.append("the commit")
        assert done == ["the commit"] and stop.value.exit_status == 143
        with pytest.raises(OSError), deferred():  # a failed commit's own error goes on
            os.kill(os.getpid(), signal.SIGTERM)
            wait_for_a_signal()
            raise OSError("disk full")
        with deferred():
            pass  # the signal the failed commit swallowed does not come back later
    assert signal.getsignal(signal.SIGTERM) is previous


# ---------------------------------------------------------------------------------------------
# train.py end to end


@pytest.mark.slow
def test_run_folder_holds_config_history_and_hdf5_weights(tiny_run, tiny_cifar):
    saved = json.loads((tiny_run / "config.json").read_text())
    assert saved["epochs"] == 2 and saved["batch_size"] == 50 and saved["seed"] == 0
    assert Config.load(tiny_run / "config.json").val_size == 50
    assert saved["runtime"]["data_source"] == str(tiny_cifar)
    assert saved["runtime"]["precision_used"] == "fp32"
    assert saved["runtime"]["train_images"] == 250
    assert {"keras", "tensorflow", "numpy", "python"} <= set(saved["runtime"])
    rows = runs.read_history(tiny_run)
    assert (tiny_run / "history.csv").read_text().splitlines()[0].split(",") == list(
        runs.HISTORY_COLUMNS)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(r["seconds"] > 0 and r["learning_rate"] == pytest.approx(1e-3) for r in rows)
    for name in ("best.weights.h5", "last.weights.h5"):
        with h5py.File(tiny_run / name) as f:
            assert "optimizer" not in f  # weights only: the optimizer's state is in the checkpoint
            assert f["layers/conv2d/vars/0"].shape == (3, 3, 3, 64)
    assert (tiny_run / "checkpoint.keras").is_file()
    assert not list(tiny_run.glob(".tmp-*"))
    log = (tiny_run / "train.log").read_text().splitlines()  # what it printed, with --verbose 0
    assert log[0].startswith(f"run {tiny_run}: 250 train / 50 val / ") and len(log) == 3
    assert [line.split()[:2] for line in log[1:]] == [["epoch", "1/2"], ["epoch", "2/2"]]


@pytest.mark.slow
def test_best_weights_are_those_of_the_best_validation_epoch(tiny_run):
    state = runs.read_checkpoint_state(tiny_run / "checkpoint.keras")
    rows = runs.read_history(tiny_run)
    assert state["best_epoch"] == runs.best_row(rows)["epoch"] and state["epoch"] == 2
    assert state["history"] == rows


@pytest.mark.slow
def test_a_killed_run_resumes_with_its_original_command(tiny_cifar, tmp_path):
    original = ["train.py", "--data-dir", str(tiny_cifar), "--run", "killed", "--out",
                str(tmp_path), "--limit", "250", "--no-flip", "--tensorboard", "2", *TINY]
    run = tmp_path / "killed"
    kill_after_epochs([*original, "--epochs", "30"], run, epochs=2)
    done = runs.read_checkpoint_state(run / "checkpoint.keras")["epoch"]
    assert done >= 2
    # The same command again, plus --resume (and more epochs: --epochs may change).
    result = run_script(*original, "--epochs", str(done + 2), "--resume")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"epochs {done + 1}..{done + 2}" in result.stdout
    assert [r["epoch"] for r in runs.read_history(run)] == list(range(1, done + 3))
    with (zipfile.ZipFile(run / "checkpoint.keras") as archive,
          archive.open("model.weights.h5") as weights, h5py.File(weights) as f):
        steps = int(np.asarray(f["optimizer/vars/0"]))
    assert steps == (done + 2) * 250 // 50  # the optimizer's step count carried over the kill
    config = Config.load(run / "config.json")
    assert (config.epochs, config.limit, config.flip) == (done + 2, 250, False)
    assert not list(run.glob(".*"))  # no staged weights, temporary files or lock left
    log = (run / "train.log").read_text().splitlines()  # the resume adds to the killed run's log
    assert [line.split()[0] for line in log].count("run") == 2
    logged = [int(line.split()[1].split("/")[0]) for line in log if line.startswith("epoch")]
    assert logged[-2:] == [done + 1, done + 2] and logged == sorted(set(logged))
    assert_last_weights_are_the_checkpoint_s(run)
    assert_each_step_once(run, every=2)  # TensorBoard's curves too, after the kill


@pytest.mark.slow
def test_resume_refuses_changed_settings_and_new_runs_refuse_to_overwrite(tiny_run):
    changed = run_script("train.py", "--run", tiny_run.name, "--out", str(tiny_run.parent),
                         "--resume", "--lr", "0.1", "--dropout", "0.2", "--batch-size", "50")
    assert changed.returncode == 2
    assert changed.stderr.strip().splitlines() == [
        f"error: --resume continues {tiny_run} with its config.json; --conv-dropout 0.2 differs "
        "from its 0.5; --fc-dropout 0.2 differs from its 0.5; --learning-rate 0.1 differs from "
        "its 0.001"]
    again = run_script("train.py", "--run", tiny_run.name, "--out", str(tiny_run.parent))
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [
        f"error: {tiny_run} already holds a run: pass --resume to continue it, or another --run"]


def assert_last_weights_are_the_checkpoint_s(run: Path) -> None:
    """last.weights.h5 holds the very network weights checkpoint.keras committed."""
    with (zipfile.ZipFile(run / runs.CHECKPOINT) as archive,
          archive.open("model.weights.h5") as inner, h5py.File(inner) as committed,
          h5py.File(run / runs.WEIGHTS["last"]) as last):
        names: list[str] = []
        last["layers"].visit(lambda name: names.append(name)
                             if isinstance(last["layers"][name], h5py.Dataset) else None)
        assert names
        for name in names:
            np.testing.assert_array_equal(last["layers"][name], committed["layers"][name])


@pytest.mark.slow
def test_a_busy_run_folder_is_refused_and_sigterm_stops_with_the_resume_command(tiny_cifar,
                                                                                 tmp_path):
    command = ["train.py", "--data-dir", str(tiny_cifar), "--run", "busy", "--out",
               str(tmp_path), "--limit", "100", *TINY]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    first = subprocess.Popen([sys.executable, *command, "--epochs", "40"], cwd=ROOT, text=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    run = tmp_path / "busy"
    try:
        deadline = time.monotonic() + 240
        while not runs.read_history(run):
            assert first.poll() is None, "the run ended before its first epoch"
            assert time.monotonic() < deadline, "the run never got going"
            time.sleep(0.2)
        # A second training of the same folder, new or resumed, while the first trains.
        others = [subprocess.Popen([sys.executable, *command, *extra], cwd=ROOT, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
                  for extra in (["--epochs", "40"], ["--resume"])]
        for other in others:
            _, stderr = other.communicate(timeout=240)
            assert other.returncode == 2, stderr[-2000:]
            assert stderr.strip().splitlines() == [
                f"error: {run} is in use by another training (pid {first.pid}); wait for it to "
                "end, or pass another --run"]
        assert first.poll() is None, "the first run did not outlast the refusals"
        first.send_signal(signal.SIGTERM)
        _, stderr = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 143, stderr[-2000:]
    done = runs.read_checkpoint_state(run / runs.CHECKPOINT)["epoch"]
    resume = (f"python train.py --run busy --out {shlex.quote(str(tmp_path))} --resume")
    assert stderr.strip().splitlines() == [f"stopped at epoch {done} of 40; continue with: "
                                           f"{resume}"]
    # Stopped cleanly: the epoch committed whole, nothing temporary left, the claim released.
    assert sorted(p.name for p in run.iterdir()) == [
        "best.weights.h5", "checkpoint.keras", "config.json", "history.csv", "last.weights.h5",
        "tensorboard", "train.log"]
    assert runs.read_history(run) == runs.read_checkpoint_state(run / runs.CHECKPOINT)["history"]
    assert_last_weights_are_the_checkpoint_s(run)
    resumed = run_script(*shlex.split(resume)[1:], "--epochs", str(done + 1))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert [r["epoch"] for r in runs.read_history(run)] == list(range(1, done + 2))


@pytest.mark.slow
def test_mirrored_strategy_over_two_cpu_devices(tiny_cifar, tmp_path):
    result = run_script("train.py", "--data-dir", str(tiny_cifar), "--run", "mirrored", "--out",
                        str(tmp_path), "--epochs", "1", "--strategy", "mirrored",
                        "--cpu-devices", "2", *TINY)
    assert result.returncode == 0, result.stderr[-2000:]
    run = tmp_path / "mirrored"
    assert json.loads((run / "config.json").read_text())["runtime"]["replicas"] == 2
    assert len(runs.read_history(run)) == 1 and (run / "best.weights.h5").exists()


@pytest.mark.slow
def test_a_batch_smaller_than_the_replicas_is_one_line(tiny_cifar, tmp_path):
    result = run_script("train.py", "--data-dir", str(tiny_cifar), "--out", str(tmp_path),
                        "--run", "small", "--strategy", "mirrored", "--cpu-devices", "2",
                        "--batch-size", "1", "--epochs", "1", "--val-size", "50", "--verbose", "0")
    assert (result.returncode, result.stderr.strip().splitlines()) == (2, [
        "error: batch_size 1 is smaller than the 2 replicas of the mirrored strategy: give each "
        "at least one image"])
    assert not (tmp_path / "small" / "history.csv").exists()


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_multiworker_strategy_with_two_local_workers(tiny_cifar, tmp_path):
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers},
                                "task": {"type": "worker", "index": index}})
        processes.append(subprocess.Popen(
            [sys.executable, "train.py", "--data-dir", str(tiny_cifar), "--run", "multi",
             "--out", str(tmp_path), "--epochs", "1", "--strategy", "multiworker", *TINY],
            cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "TF_CONFIG": tf_config, "TF_CPP_MIN_LOG_LEVEL": "2"}))
    outputs = [p.communicate(timeout=300) for p in processes]
    errors = outputs[0][1][-2000:] + outputs[1][1][-2000:]
    assert [p.returncode for p in processes] == [0, 0], errors
    run = tmp_path / "multi"
    assert json.loads((run / "config.json").read_text())["runtime"]["replicas"] == 2
    assert len(runs.read_history(run)) == 1 and (run / "best.weights.h5").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["multi"]  # the second worker wrote nothing


def run_train_py(monkeypatch, capsys, *args: str) -> tuple[int, list[str]]:
    """train.py run in this process, as `python train.py ARGS` would: its exit status and the
    lines it wrote to stderr."""
    monkeypatch.setattr(sys, "argv", ["train.py", *args])
    try:
        runpy.run_path(str(ROOT / "train.py"), run_name="__main__")
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    return status, capsys.readouterr().err.strip().splitlines()


NO_ROOM = r"error: No space left on device \(\d+\.\d MB needed, \d+\.\d MB free\): "


@pytest.mark.slow
def test_a_full_disk_in_train_py_is_one_line_leaves_no_temporary_file_and_resumes(
        tiny_cifar, tmp_path, monkeypatch, capsys):
    command = ["--data-dir", str(tiny_cifar), "--run", "full", "--out", str(tmp_path),
               "--limit", "100", "--epochs", "2", *TINY]
    run = tmp_path / "full"
    real = shutil.disk_usage
    # The disk fills up once epoch 2 has staged its last weights: its commit cannot finish.
    with monkeypatch.context() as patch:
        fake_disk(patch, lambda path: 0 if (run / runs.staged_name(2, "last")).exists()
                  else real(path).free)
        status, lines = run_train_py(patch, capsys, *command)
    assert status == 2, lines
    # runpy gives train.py's path as sys.argv[0], which the command repeats
    resume = shlex.join(["python", str(ROOT / "train.py"), "--run", "full", "--out",
                         str(tmp_path), "--resume"])
    assert len(lines) == 1 and re.fullmatch(
        NO_ROOM + re.escape(str(run)) + r"/(\.staged-2-best\.weights\.h5|checkpoint\.keras); "
        r"epoch 1 is saved; once that is fixed, continue with: " + re.escape(resume),
        lines[0]), lines
    assert not list(run.glob(".*"))  # no temporary file, no staged weights, no lock
    assert runs.read_checkpoint_state(run / runs.CHECKPOINT)["epoch"] == 1
    assert [r["epoch"] for r in runs.read_history(run)] == [1]
    status, lines = run_train_py(monkeypatch, capsys, *shlex.split(resume)[2:])
    assert status == 0, lines
    assert [r["epoch"] for r in runs.read_history(run)] == [1, 2]
    assert_last_weights_are_the_checkpoint_s(run)


@contextlib.contextmanager
def small_file_system(folder: Path, size: str) -> Iterator[Callable[[str], None]]:
    """A real tmpfs of the size mounted at folder; yields a function that resizes it. Skips the
    test where this process may not mount one (not root, or a sandbox that refuses)."""
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
            capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs needs root and a mount the sandbox allows")

    def resize(new: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={new}", str(folder)], check=True)

    try:
        yield resize
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.slow
def test_train_py_on_a_really_full_disk_is_one_line_not_a_crash_and_resumes(tiny_cifar,
                                                                            tmp_path):
    # Room for epoch 1, two weights files and a checkpoint (the weights and Adam's two moments:
    # three weights' worth), and 20 MiB more: too little for epoch 2's staged weights. Without
    # the free-space check h5py wrote until the disk was full, then printed screens of
    # tracebacks and segfaulted (exit 139), and so did every resume.
    weights = runs.model_bytes(build_from_config(Config()))
    size_mb = 5 * weights // 2**20 + 20
    command = ["train.py", "--data-dir", str(tiny_cifar), "--run", "small", "--limit", "100",
               "--epochs", "2", *TINY]
    with small_file_system(tmp_path / "disk", f"{size_mb}M") as resize:
        out = tmp_path / "disk"
        result = run_script(*command, "--out", str(out))
        assert result.returncode == 2, result.stderr[-3000:]
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and re.match(NO_ROOM, lines[0]), lines
        assert "epoch 1 is saved; once that is fixed, continue with: " in lines[0]
        run = out / "small"
        assert not list(run.glob(".*"))  # no temporary file, no staged weights, no lock
        assert [r["epoch"] for r in runs.read_history(run)] == [1]
        resize(f"{size_mb * 3}M")
        resumed = run_script(*command, "--out", str(out), "--resume")
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert [r["epoch"] for r in runs.read_history(run)] == [1, 2]
        assert not list(run.glob(".*"))


def test_resume_without_a_run_name_is_one_line(monkeypatch, capsys, tmp_path):
    status, lines = run_train_py(monkeypatch, capsys, "--resume", "--out", str(tmp_path))
    assert (status, lines) == (2, [
        "error: --resume continues a named run: pass --run NAME (and its --out)"])


@pytest.mark.slow
def test_an_os_error_before_the_run_exists_is_one_line_from_train_py(tiny_cifar, tmp_path,
                                                                     monkeypatch, capsys):
    too_long = "r" * 256  # one folder name, but longer than a file system takes
    status, lines = run_train_py(monkeypatch, capsys, "--data-dir", str(tiny_cifar), "--out",
                                 str(tmp_path), "--run", too_long, *TINY)
    assert (status, lines) == (2, [f"error: File name too long: {tmp_path / too_long}"])
    assert list(tmp_path.iterdir()) == []


def read_only(monkeypatch, folder: Path) -> None:
    """Writes under folder fail as on a read-only file system (root ignores permission bits)."""
    import errno

    def refuse(path) -> None:
        if Path(path).is_relative_to(folder):
            raise OSError(errno.EROFS, "Read-only file system", str(path))

    real_mkdir, real_open = Path.mkdir, os.open
    def mkdir(self, *args, **kwargs):
        if not self.exists():  # an existing folder is EEXIST, read-only or not
            refuse(self)
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", lambda path, *a, **k: (refuse(path), real_open(path, *a,
                                                                                   **k))[1])


@pytest.mark.slow
def test_a_read_only_out_or_run_is_one_line_from_train_py(tiny_cifar, tiny_run, tmp_path,
                                                          monkeypatch, capsys):
    out = tmp_path / "read-only"
    read_only(monkeypatch, out)
    status, lines = run_train_py(monkeypatch, capsys, "--data-dir", str(tiny_cifar), "--out",
                                 str(out), "--run", "new", *TINY)
    assert (status, lines) == (2, [f"error: Read-only file system: {out / 'new'}"])
    read_only(monkeypatch, tiny_run)
    before = {p: p.read_bytes() for p in tiny_run.rglob("*") if p.is_file()}
    status, lines = run_train_py(monkeypatch, capsys, "--run", tiny_run.name, "--out",
                                 str(tiny_run.parent), "--resume", "--epochs", "3")
    assert (status, lines) == (2, [f"error: Read-only file system: {tiny_run / '.lock'}"])
    assert {p: p.read_bytes() for p in tiny_run.rglob("*") if p.is_file()} == before
