"""study.py: the study tables, the train.py commands, and resume/skip decisions on fake run folders."""

from __future__ import annotations

import json
import shlex
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import run_script

import study
from models.cli import UserError
from train import STATE_ENTRY, write_history


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def fake_run(folder: Path, epochs_done: int | None, **settings) -> Path:
    """A run folder as train.py leaves it, without training: config.json, a checkpoint holding only
    the run state (what study.py reads) and history.csv."""
    folder.mkdir(parents=True)
    config = {"batchnorm": "output", "conv_dropout": 0.5, "fc_dropout": 0.5, "optimizer": "adam",
              "learning_rate": 0.001, "momentum": 0.9, "seed": 0, **settings}
    (folder / "config.json").write_text(json.dumps(config))
    if epochs_done is not None:
        with zipfile.ZipFile(folder / "checkpoint.keras", "w") as archive:
            archive.writestr(STATE_ENTRY, json.dumps({"epoch": epochs_done}))
        rows = [{"epoch": e, "learning_rate": 1e-3, "train_loss": 2.0 - e / 10, "train_accuracy": 0.1 * e,
                 "val_loss": 2.1 - e / 10, "val_accuracy": [0.3, 0.5, 0.4][e - 1], "test_loss": 2.2,
                 "test_accuracy": [0.25, 0.45, 0.35][e - 1], "seconds": 1.0} for e in range(1, epochs_done + 1)]
        write_history(folder / "history.csv", rows)
    return folder


def test_dry_run_prints_the_four_train_commands(tmp_path):
    out = tmp_path / "study"
    result = run_script("study.py", "bn-dropout", "--data-dir", "/data/cifar", "--epochs", "3", "--out", str(out),
                        "--seed", "7", "--dry-run", "--", "--limit", "500", "--precision", "bf16")
    assert result.returncode == 0, result.stderr[-2000:]
    commands = [shlex.split(line) for line in result.stdout.splitlines() if " train.py " in line]
    assert len(commands) == 4
    expected = [("bn", "output", "0.5"), ("bn-no-dropout", "output", "0.0"), ("no-bn", "none", "0.5"),
                ("no-bn-no-dropout", "none", "0.0")]
    for command, (name, batchnorm, dropout) in zip(commands, expected, strict=True):
        assert command[1] == "train.py"
        assert flag(command, "--run") == name
        assert flag(command, "--out") == str(out)
        assert flag(command, "--batchnorm") == batchnorm
        assert flag(command, "--conv-dropout") == flag(command, "--fc-dropout") == dropout
        assert (flag(command, "--epochs"), flag(command, "--seed")) == ("3", "7")
        assert flag(command, "--data-dir") == "/data/cifar"
        assert command[-4:] == ["--limit", "500", "--precision", "bf16"]
        assert "--resume" not in command
    assert "BN without dropouts (bn-no-dropout): train" in result.stdout
    assert not out.exists()  # a dry run creates nothing


def test_optimizer_study_commands():
    commands = study.study_commands("optimizers", epochs=2, out="runs")
    assert [flag(c, "--optimizer") for c in commands] == ["adam", "sgd", "rmsprop"]
    assert [float(flag(c, "--learning-rate")) for c in commands] == [1e-3, 0.01, 1e-3]
    assert flag(commands[1], "--momentum") == "0.9"
    assert all(c[0] == sys.executable and "--data-dir" not in c for c in commands)


def test_prefix_and_default_folder():
    commands = study.study_commands("bn-everywhere", epochs=5, prefix="short")
    assert [flag(c, "--run") for c in commands] == ["short-bn-all", "short-bn-all-no-dropout"]
    assert flag(commands[0], "--out") == str(study.LOGS / "bn-everywhere")
    assert flag(commands[0], "--batchnorm") == "all"


def test_finished_runs_are_skipped_and_interrupted_ones_resumed(tmp_path, capsys):
    fake_run(tmp_path / "bn", 3)
    fake_run(tmp_path / "bn-no-dropout", 1, conv_dropout=0.0, fc_dropout=0.0)
    (tmp_path / "no-bn").mkdir()  # killed before its first epoch: config.json only, trained afresh
    (tmp_path / "no-bn" / "config.json").write_text(json.dumps({"batchnorm": "none"}))
    steps = study.plan_study("bn-dropout", epochs=3, data_dir="D", out=tmp_path,
                             extra=["--limit", "500", "--verbose", "0"])
    assert [s.action for s in steps] == ["skip", "resume", "train", "train"]
    assert steps[0].command == [] and steps[0].note == "finished (3 of 3 epochs)"
    # train.py refuses --resume with changed settings: only --epochs, --data-dir and --verbose go along.
    assert steps[1].command == [sys.executable, "train.py", "--run", "bn-no-dropout", "--out", str(tmp_path),
                                "--resume", "--epochs", "3", "--data-dir", "D", "--verbose", "0"]
    assert steps[1].note == "resumes at epoch 2; keeps its config.json, so ignores --limit"
    assert flag(steps[2].command, "--batchnorm") == "none" and "--resume" not in steps[2].command
    commands = study.study_commands("bn-dropout", epochs=3, data_dir="D", out=tmp_path)
    assert [flag(c, "--run") for c in commands] == ["bn-no-dropout", "no-bn", "no-bn-no-dropout"]
    # More epochs than a finished run had: it is continued, not skipped.
    assert study.plan_study("bn-dropout", epochs=5, out=tmp_path)[0].action == "resume"


def test_a_folder_holding_another_configuration_is_refused(tmp_path):
    fake_run(tmp_path / "bn", 1, batchnorm="all")
    with pytest.raises(UserError, match=r"bn holds another run \(batchnorm='all' \(study: 'output'\)\)"):
        study.plan_study("bn-dropout", epochs=3, out=tmp_path)


def test_published_runs_without_checkpoint(tmp_path):
    folder = fake_run(tmp_path / "bn", 3)
    (folder / "checkpoint.keras").unlink()
    assert study.plan_study("bn-dropout", epochs=3, out=tmp_path)[0].action == "skip"
    with pytest.raises(UserError, match=r"has 3 of 4 epochs and no checkpoint\.keras to resume from"):
        study.plan_study("bn-dropout", epochs=4, out=tmp_path)


def test_a_finished_study_runs_nothing_and_summarizes(tmp_path, capsys):
    for variant in study.STUDIES["bn-dropout"]:
        fake_run(tmp_path / variant.name, 3, **variant.settings)
    study.main(["bn-dropout", "--epochs", "3", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert out.count(": skip ") == 4
    assert "NO BN without dropouts" in out
    assert "best val accuracy 0.5000 at epoch 2 of 3 (test 0.4500)" in out


def test_bad_input():
    with pytest.raises(UserError, match="no study 'nope'; choose one of bn-dropout, bn-everywhere, optimizers"):
        study.plan_study("nope")
    with pytest.raises(UserError, match="--epochs must be at least 1, not 0"):
        study.plan_study("bn-dropout", epochs=0)
