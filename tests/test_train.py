"""train.py: the run folder, resuming after a kill, presets and flags, and multi-device strategies."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile

import h5py
import numpy as np
import pytest
from conftest import ROOT, run_script

import train
from models.config import PRESETS, Config

TINY = ("--val-size", "50", "--batch-size", "50", "--precision", "fp32", "--verbose", "0")


def history(run) -> list[dict]:
    with open(run / "history.csv") as f:
        return list(csv.DictReader(f))


def test_run_folder_holds_config_history_and_hdf5_weights(tiny_run, tiny_cifar):
    saved = json.loads((tiny_run / "config.json").read_text())
    assert saved["epochs"] == 2 and saved["batch_size"] == 50 and saved["seed"] == 0
    assert saved["runtime"]["data_source"] == str(tiny_cifar)
    assert saved["runtime"]["precision_used"] == "fp32" and saved["runtime"]["train_images"] == 250
    assert {"keras", "tensorflow", "numpy", "python"} <= set(saved["runtime"])
    rows = history(tiny_run)
    assert list(rows[0]) == list(train.HISTORY_COLUMNS)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(float(r["seconds"]) > 0 and float(r["learning_rate"]) == pytest.approx(1e-3) for r in rows)
    for name in ("best.weights.h5", "last.weights.h5"):
        with h5py.File(tiny_run / name) as f:
            assert "optimizer" not in f  # weights only: the optimizer's state lives in checkpoint.keras
            assert f["layers/conv2d/vars/0"].shape == (3, 3, 3, 64)
    assert not list(tiny_run.glob(".tmp-*"))


def test_best_weights_are_those_of_the_best_validation_epoch(tiny_run):
    state = train.read_checkpoint_state(tiny_run / "checkpoint.keras")
    rows = history(tiny_run)
    best = max(rows, key=lambda r: float(r["val_accuracy"]))
    assert state["best_epoch"] == int(best["epoch"]) and state["epoch"] == 2
    assert state["history"] == [{k: (int(v) if k == "epoch" else float(v)) for k, v in r.items()} for r in rows]


def test_a_killed_run_resumes_where_it_stopped(tiny_cifar, tmp_path):
    args = [sys.executable, "train.py", "--data-dir", str(tiny_cifar), "--run", "killed", "--out", str(tmp_path),
            "--epochs", "30", *TINY]
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    run = tmp_path / "killed"
    try:
        deadline = time.monotonic() + 240
        while not ((run / "history.csv").exists() and len(history(run)) >= 2):
            assert process.poll() is None and time.monotonic() < deadline, "the run ended or never got going"
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    done = train.read_checkpoint_state(run / "checkpoint.keras")["epoch"]
    assert done >= 2
    result = run_script("train.py", "--run", "killed", "--out", str(tmp_path), "--resume", "--epochs", str(done + 2))
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"epochs {done + 1}..{done + 2}" in result.stdout
    assert [int(r["epoch"]) for r in history(run)] == list(range(1, done + 3))
    with (zipfile.ZipFile(run / "checkpoint.keras") as archive, archive.open("model.weights.h5") as weights,
          h5py.File(weights) as f):
        steps = int(np.asarray(f["optimizer/vars/0"]))
    assert steps == (done + 2) * 250 // 50  # the optimizer's step count carried over the kill
    assert json.loads((run / "config.json").read_text())["epochs"] == done + 2


def test_resume_refuses_changed_settings_and_new_runs_refuse_to_overwrite(tiny_run):
    changed = run_script("train.py", "--run", tiny_run.name, "--out", str(tiny_run.parent), "--resume",
                         "--lr", "0.1")
    assert changed.returncode == 2
    assert changed.stderr.strip().splitlines() == [
        f"error: --resume continues {tiny_run} with its config.json; only --epochs and --data-dir may change "
        "(got --learning-rate)"]
    again = run_script("train.py", "--run", tiny_run.name, "--out", str(tiny_run.parent))
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [
        f"error: {tiny_run} already holds a run: pass --resume to continue it, or another --run"]


def test_presets_then_flags():
    assert train.make_config(train.parse_args([])) == Config()
    tuned = train.make_config(train.parse_args(["--preset", "tuned", "--epochs", "3"]))
    assert tuned == Config(**{**PRESETS["tuned"], "preset": "tuned", "epochs": 3})
    both = train.make_config(train.parse_args(["--dropout", "0.2", "--fc-dropout", "0.4", "--no-augment"]))
    assert (both.conv_dropout, both.fc_dropout, both.augment) == (0.2, 0.4, False)
    assert train.make_config(train.parse_args(["--cutout", "12"])).cutout == 12


def test_label_smoothing_loss_matches_its_definition():
    from models.losses import make_loss

    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], "float32")
    labels = np.array([0, 2])
    smoothed = 0.1 / 3 + 0.9 * np.eye(3)[labels]
    expected = np.mean(-np.sum(smoothed * np.log(probabilities), axis=1))
    assert float(make_loss(0.1)(labels, probabilities)) == pytest.approx(expected, rel=1e-5)
    assert float(make_loss(0.0)(labels, probabilities)) == pytest.approx(-np.mean(np.log([0.7, 0.8])), rel=1e-5)


def test_mirrored_strategy_over_two_cpu_devices(tiny_cifar, tmp_path):
    result = run_script("train.py", "--data-dir", str(tiny_cifar), "--run", "mirrored", "--out", str(tmp_path),
                        "--epochs", "1", "--strategy", "mirrored", "--cpu-devices", "2", *TINY)
    assert result.returncode == 0, result.stderr[-2000:]
    run = tmp_path / "mirrored"
    assert json.loads((run / "config.json").read_text())["runtime"]["replicas"] == 2
    assert len(history(run)) == 1 and (run / "best.weights.h5").exists()


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multiworker_strategy_with_two_local_workers(tiny_cifar, tmp_path):
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        processes.append(subprocess.Popen(
            [sys.executable, "train.py", "--data-dir", str(tiny_cifar), "--run", "multi", "--out", str(tmp_path),
             "--epochs", "1", "--strategy", "multiworker", *TINY], cwd=ROOT, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "TF_CONFIG": tf_config, "TF_CPP_MIN_LOG_LEVEL": "2"}))
    outputs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    run = tmp_path / "multi"
    assert json.loads((run / "config.json").read_text())["runtime"]["replicas"] == 2
    assert len(history(run)) == 1 and (run / "best.weights.h5").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["multi"]  # the second worker wrote nothing here
