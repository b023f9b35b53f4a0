"""training.studies and training.study_plan: the study tables, the train.py commands, resume and
skip decisions on fake run folders; and study.py end to end."""

from __future__ import annotations

import shlex
import zipfile
from pathlib import Path

import pytest
from conftest import run_script

import runs
from models.config import Config, ConfigError
from training.studies import STUDIES, variant_of
from training.study_plan import fields_named, plan_study, settings_flags, split_flags


class ZipOnly:
    """Stands in for a model in runs.save_checkpoint: an empty archive, the run state added."""

    def save(self, path: str) -> None:
        zipfile.ZipFile(path, "w").close()


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def commands(study: str, **options) -> list[list[str]]:
    """train.py's arguments of the runs the study would train now (finished runs have none)."""
    return [step.argv for step in plan_study(study, **options) if step.argv]


def fake_run(folder: Path, epochs_done: int | None, **settings) -> Path:
    """A run folder as train.py leaves it, without training: config.json, a checkpoint holding
    only the run state (what the study reads) and history.csv."""
    folder.mkdir(parents=True)
    Config(**settings).save(folder / runs.CONFIG, {})
    if epochs_done is not None:
        runs.save_checkpoint(ZipOnly(), str(folder / runs.CHECKPOINT), {"epoch": epochs_done})
        rows = [{"epoch": e, "learning_rate": 1e-3, "train_loss": 2.0 - e / 10,
                 "train_accuracy": 0.1 * e, "val_loss": 2.1 - e / 10,
                 "val_accuracy": [0.3, 0.5, 0.4][e - 1], "test_loss": 2.2,
                 "test_accuracy": [0.25, 0.45, 0.35][e - 1], "seconds": 1.0}
                for e in range(1, epochs_done + 1)]
        runs.write_history(folder / runs.HISTORY, rows)
    return folder


def test_variants_are_recognised_by_their_config():
    studies = tuple(STUDIES.values())
    assert variant_of(Config(), studies).name == "bn"
    assert variant_of(Config(batchnorm="none", conv_dropout=0.0, fc_dropout=0.0),
                      studies).label == "NO BN without dropouts"
    optimizers = (STUDIES["optimizers"],)
    assert variant_of(Config(optimizer="sgd", learning_rate=0.01), optimizers).name == "sgd"
    assert variant_of(Config(optimizer="sgd"), optimizers) is None  # not the study's rate
    assert variant_of(Config(conv_dropout=0.2), (STUDIES["bn-dropout"],)) is None
    for study in studies:  # each variant sets exactly the fields its study varies
        assert all(set(v.settings) <= set(study.varies) for v in study.variants)


def test_settings_become_flags_and_flags_group():
    assert settings_flags({"conv_dropout": 0.0, "batchnorm": "all"}) == [
        "--conv-dropout", "0.0", "--batchnorm", "all"]
    assert split_flags(["--limit", "5", "--xla", "--precision", "bf16"]) == [
        ["--limit", "5"], ["--xla"], ["--precision", "bf16"]]


def test_optimizer_study_commands():
    planned = commands("optimizers", epochs=2, out="runs")
    assert [flag(c, "--optimizer") for c in planned] == ["adam", "sgd", "rmsprop"]
    assert [float(flag(c, "--learning-rate")) for c in planned] == [1e-3, 0.01, 1e-3]
    assert flag(planned[1], "--momentum") == "0.9"
    assert all(c[:2] == ["--run", name] and "--data-dir" not in c
               for c, name in zip(planned, ("adam", "sgd", "rmsprop"), strict=True))


def test_prefix_and_default_folder():
    planned = commands("bn-everywhere", epochs=5, prefix="short")
    assert [flag(c, "--run") for c in planned] == ["short-bn-all", "short-bn-all-no-dropout"]
    assert flag(planned[0], "--out") == str(runs.LOGS / "bn-everywhere")
    assert flag(planned[0], "--batchnorm") == "all"


def test_finished_runs_are_skipped_and_interrupted_ones_resumed(tmp_path):
    fake_run(tmp_path / "bn", 3)
    fake_run(tmp_path / "bn-no-dropout", 1, conv_dropout=0.0, fc_dropout=0.0)
    fake_run(tmp_path / "no-bn", None, batchnorm="none")  # killed before its first epoch
    steps = plan_study("bn-dropout", epochs=3, data_dir="D", out=tmp_path,
                       extra=["--limit", "500", "--verbose", "0"])
    assert [s.action for s in steps] == ["skip", "resume", "train", "train"]
    assert steps[0].argv == [] and steps[0].note == "finished (3 of 3 epochs)"
    # A resumed run takes the extra flags along, for train.py --resume to check them.
    assert steps[1].argv == ["--run", "bn-no-dropout", "--out", str(tmp_path), "--resume",
                             "--epochs", "3", "--data-dir", "D", "--limit", "500", "--verbose", "0"]
    assert steps[1].note == "resumes at epoch 2"
    assert flag(steps[2].argv, "--batchnorm") == "none" and "--resume" not in steps[2].argv
    planned = commands("bn-dropout", epochs=3, data_dir="D", out=tmp_path)
    assert [flag(c, "--run") for c in planned] == ["bn-no-dropout", "no-bn", "no-bn-no-dropout"]
    # More epochs than a finished run had: it is continued, not skipped.
    assert plan_study("bn-dropout", epochs=5, out=tmp_path)[0].action == "resume"


def test_a_folder_holding_another_configuration_is_refused(tmp_path):
    fake_run(tmp_path / "bn", 1, batchnorm="all")
    with pytest.raises(runs.RunError,
                       match=r"bn holds another run \(batchnorm='all' \(study: 'output'\)\)"):
        plan_study("bn-dropout", epochs=3, out=tmp_path)
    fake_run(tmp_path / "other" / "bn", 1, seed=3)
    with pytest.raises(runs.RunError, match=r"bn holds another run \(seed=3 \(study: 0\)\)"):
        plan_study("bn-dropout", epochs=3, out=tmp_path / "other")


def test_a_folder_trained_with_another_recipe_is_refused_but_extra_flags_are_left_to_train_py(
        tmp_path):
    fake_run(tmp_path / "bn", 1, learning_rate=0.1, limit=500)
    with pytest.raises(runs.RunError, match=r"bn holds another run \(learning_rate=0.1 \(study: "
                                            r"0.001\)\); pass another --out or --prefix"):
        plan_study("bn-dropout", epochs=3, out=tmp_path, extra=["--limit", "500"])
    assert plan_study("bn-dropout", epochs=3, out=tmp_path,
                      extra=["--lr", "0.1", "--limit", "500"])[0].action == "resume"
    assert fields_named(["--no-flip", "--dropout", "0", "--verbose", "0"]) == {
        "flip", "conv_dropout", "fc_dropout"}


def test_published_runs_without_checkpoint(tmp_path):
    folder = fake_run(tmp_path / "bn", 3)
    (folder / "checkpoint.keras").unlink()
    assert plan_study("bn-dropout", epochs=3, out=tmp_path)[0].action == "skip"
    with pytest.raises(runs.RunError,
                       match=r"has 3 of 4 epochs and no checkpoint\.keras to resume from"):
        plan_study("bn-dropout", epochs=4, out=tmp_path)


def test_bad_input():
    with pytest.raises(ConfigError, match="no study 'nope'; choose one of bn-dropout, "
                                          "bn-everywhere, optimizers"):
        plan_study("nope")
    with pytest.raises(ConfigError, match="--epochs must be at least 1, not 0"):
        plan_study("bn-dropout", epochs=0)


@pytest.mark.slow
def test_dry_run_prints_the_four_train_commands(tmp_path):
    out = tmp_path / "study"
    result = run_script("study.py", "bn-dropout", "--data-dir", "/data/cifar", "--epochs", "3",
                        "--out", str(out), "--seed", "7", "--dry-run", "--", "--limit", "500",
                        "--precision", "bf16")
    assert result.returncode == 0, result.stderr[-2000:]
    printed = [shlex.split(line) for line in result.stdout.splitlines() if " train.py " in line]
    assert len(printed) == 4
    expected = [("bn", "output", "0.5"), ("bn-no-dropout", "output", "0.0"),
                ("no-bn", "none", "0.5"), ("no-bn-no-dropout", "none", "0.0")]
    for command, (name, batchnorm, dropout) in zip(printed, expected, strict=True):
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


@pytest.mark.slow
def test_a_finished_study_runs_nothing_and_summarizes(tmp_path):
    for variant in STUDIES["bn-dropout"].variants:
        fake_run(tmp_path / variant.name, 3, **variant.settings)
    result = run_script("study.py", "bn-dropout", "--epochs", "3", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count(": skip ") == 4
    assert "NO BN without dropouts" in result.stdout
    assert "best val accuracy 0.5000 at epoch 2 of 3 (test 0.4500)" in result.stdout
    bad = run_script("study.py", "bn-dropout", "--epochs", "0", "--out", str(tmp_path))
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["error: --epochs must be at least 1, not 0"]
