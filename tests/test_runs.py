"""runs: the run folder's history, best epoch, checkpoint state, epochs done, finding a run,
claiming a folder for one training, and recovering the state its checkpoint committed."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest

import runs
from models.config import Config


def rows(val_accuracies: list[float]) -> list[dict]:
    return [{"epoch": e, "learning_rate": 1e-3 / e, "train_loss": 2.0 - e / 10,
             "train_accuracy": 0.1 * e, "val_loss": 2.1 - e / 10, "val_accuracy": accuracy,
             "test_loss": 2.2, "test_accuracy": accuracy - 0.05, "seconds": 1.5 * e}
            for e, accuracy in enumerate(val_accuracies, 1)]


def test_history_round_trip(tmp_path):
    written = rows([0.3, 0.5, 0.4])
    runs.write_history(tmp_path / runs.HISTORY, written)
    assert (tmp_path / "history.csv").read_text().splitlines()[0] == ",".join(
        runs.HISTORY_COLUMNS)
    back = runs.read_history(tmp_path)
    assert back == written
    assert all(type(r["epoch"]) is int and type(r["seconds"]) is float for r in back)
    assert runs.read_history(tmp_path / "elsewhere") == []


HEADER = ",".join(runs.HISTORY_COLUMNS)
ROW = "1,0.001,2.0,0.1,2.1,0.3,2.2,0.25,1.5"


@pytest.mark.parametrize(("text", "problem"), [
    (HEADER.replace("val_accuracy", "val_acc") + "\n" + ROW,
     ": the header lacks val_accuracy and has val_acc; training writes " + HEADER),
    (HEADER + ",note\n" + ROW + ",x", ": the header has note; training writes " + HEADER),
    ("", " is empty: not even a header"),
    (HEADER + "\n" + ROW.replace("2.0", "nan?"), ", line 2: train_loss is 'nan?', not a number"),
    (HEADER + "\n" + ROW + "\n" + ROW.replace("1,", "2.5,", 1),
     ", line 3: epoch is '2.5', not a whole number"),
    (HEADER + "\n" + ROW.rsplit(",", 1)[0], ", line 2: no seconds value"),
    (HEADER + "\n" + ROW + ",9", ", line 2: more values than the header has columns"),
    (HEADER + "\n" + ROW + "\n" + ROW, ", line 3: epoch 1 where epoch 2 belongs (training writes "
     "each epoch once, in order)"),
    (HEADER + "\n" + ROW.replace("1,", "2,", 1), ", line 2: epoch 2 where epoch 1 belongs "
     "(training writes each epoch once, in order)"),
])
def test_a_garbled_history_is_a_run_error_naming_the_file_and_the_problem(tmp_path, text,
                                                                          problem):
    (tmp_path / runs.HISTORY).write_text(text)
    with pytest.raises(runs.RunError) as error:
        runs.read_history(tmp_path)
    assert str(error.value) == f"{tmp_path / runs.HISTORY}{problem}"


def test_a_history_longer_than_the_run_s_epochs_is_a_run_error(tmp_path):
    Config(epochs=2).save(tmp_path / runs.CONFIG, {})
    runs.write_history(tmp_path / runs.HISTORY, rows([0.3, 0.5]))
    assert len(runs.read_history(tmp_path)) == 2
    runs.write_history(tmp_path / runs.HISTORY, rows([0.3, 0.5, 0.4]))
    with pytest.raises(runs.RunError) as error:
        runs.read_history(tmp_path)
    assert str(error.value) == (f"{tmp_path / runs.HISTORY} holds 3 epochs, more than the 2 of "
                                f"the run's config.json")


def test_best_row_is_the_first_of_equal_validation_accuracies():
    assert runs.best_row(rows([0.3, 0.5, 0.5, 0.4]))["epoch"] == 2
    assert runs.best_row(rows([0.6, 0.5]))["epoch"] == 1
    assert runs.best_row(rows([0.1, 0.2, 0.7]))["epoch"] == 3


def small_model() -> keras.Model:
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])


def test_checkpoint_holds_the_model_and_the_run_state(tmp_path):
    model = small_model()
    state = {"epoch": 3, "history": rows([0.3, 0.5, 0.4]), "best_epoch": 2,
             "plateau": {"wait": 1, "best": 1.25, "cooldown": 0}}
    path = tmp_path / runs.CHECKPOINT
    runs.save_checkpoint(model, str(path), state)
    assert runs.read_checkpoint_state(path) == state
    loaded = keras.saving.load_model(path)  # the state entry leaves the archive loadable
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_an_unreadable_checkpoint_is_a_run_error(tmp_path):
    path = tmp_path / runs.CHECKPOINT
    cannot = "its run cannot be resumed"
    path.write_bytes(b"PK\x03\x04 half an archive")
    with pytest.raises(runs.RunError) as error:
        runs.read_checkpoint_state(path)
    assert str(error.value) == f"{path} is truncated or corrupt (File is not a zip file); {cannot}"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("run_state.json", '{"history": []}')
    with pytest.raises(runs.RunError) as error:
        runs.epochs_done(tmp_path)
    assert str(error.value) == f"{path} holds no run state (no epoch count); {cannot}"


def test_epochs_done_trusts_the_checkpoint_over_history(tmp_path):
    assert runs.epochs_done(tmp_path) == 0
    runs.write_history(tmp_path / runs.HISTORY, rows([0.3, 0.5]))
    assert runs.epochs_done(tmp_path) == 2  # a published run: history.csv alone
    # Killed between the checkpoint and history.csv: the checkpoint is the commit point.
    runs.save_checkpoint(small_model(), str(tmp_path / runs.CHECKPOINT), {"epoch": 3})
    assert runs.epochs_done(tmp_path) == 3


def test_find_run_takes_a_path_or_a_name_and_names_where_it_looked(tmp_path):
    assert runs.find_run(tmp_path) == tmp_path
    with pytest.raises(runs.RunError) as error:
        runs.find_run("no-such-run")
    assert str(error.value) == (f"no run folder 'no-such-run' (looked for it as a path and in "
                                f"{runs.LOGS})")


def test_read_config_of_a_folder_with_and_without_one(tmp_path):
    assert runs.read_config(tmp_path) is None
    Config(epochs=4).save(tmp_path / runs.CONFIG, {"backend": "tensorflow"})
    assert runs.read_config(tmp_path) == Config(epochs=4)
    assert runs.eval_json(tmp_path, "best", "val") == tmp_path / "eval" / "best-val.json"


# ---------------------------------------------------------------------------------------------
# One training per run folder


def busy(folder, pid: int) -> str:
    return (f"{folder} is in use by another training (pid {pid}); wait for it to end, or pass "
            "another --run")


def test_a_claimed_folder_is_refused_to_a_second_claim(tmp_path):
    folder = tmp_path / "x"
    with runs.claim_folder(folder):
        assert (folder / runs.LOCK).read_text() == f"{os.getpid()}\n"
        with pytest.raises(runs.RunError) as error:
            runs.claim_folder(folder)
        assert str(error.value) == busy(folder, os.getpid())
        (folder / runs.CONFIG).write_text("{}")
    assert [p.name for p in folder.iterdir()] == ["config.json"]  # claim gone, the run kept
    # A lock file a killed training left behind is not a claim: the kernel dropped its lock.
    (folder / runs.LOCK).write_text("12345\n")
    with runs.claim_folder(folder):
        assert (folder / runs.LOCK).read_text() == f"{os.getpid()}\n"
    with runs.claim_folder(tmp_path / "new"):
        pass
    assert not (tmp_path / "new").exists()  # made for a run that wrote nothing: removed


def test_a_folder_another_process_holds_is_refused_naming_its_pid(tmp_path):
    folder = tmp_path / "x"
    with runs.claim_folder(folder):
        pass
    folder.mkdir()
    # Another process takes the claim as runs does: an exclusive flock on RUN/.lock, its pid in.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys\n"
         f"fd = os.open({str(folder / runs.LOCK)!r}, os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\nos.write(fd, f'{os.getpid()}\\n'.encode())\n"
         "print('held', flush=True)\nsys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(runs.RunError) as error:
            runs.claim_folder(folder)
        assert str(error.value) == busy(folder, holder.pid)
    finally:
        holder.communicate("")
    with runs.claim_folder(folder):  # its process ended: free
        pass


def test_folders_named_by_the_same_second_are_two(tmp_path):
    name = "20250102-030405"
    with runs.claim_new_folder(tmp_path, name) as a, runs.claim_new_folder(tmp_path, name) as b:
        assert (a.folder, b.folder) == (tmp_path / name, tmp_path / f"{name}-2")
    (tmp_path / name).mkdir()  # a folder made by another run that has not locked it yet
    with runs.claim_new_folder(tmp_path, name) as c:
        assert c.folder == tmp_path / f"{name}-2"


# ---------------------------------------------------------------------------------------------
# Recovering what the checkpoint committed


def test_recover_finishes_a_committed_epoch_and_drops_an_uncommitted_one(tmp_path):
    history = rows([0.3, 0.5])
    staged = {"last": runs.staged_name(2, "last"), "best": runs.staged_name(2, "best")}
    assert staged == {"last": ".staged-2-last.weights.h5", "best": ".staged-2-best.weights.h5"}
    files = {"last.weights.h5": "epoch 1", "best.weights.h5": "epoch 1",
             staged["last"]: "epoch 2", staged["best"]: "epoch 2",
             runs.staged_name(3, "last"): "epoch 3, uncommitted",
             ".tmp-4242-0a1b2c3d-checkpoint.keras": "half a checkpoint",
             ".tmp-4242-0a1b2c3d-.staged-3-best.weights.h5": "half of epoch 3's best weights",
             ".tmp-history.csv": "half a history, as a run before pids were in the names left it",
             ".tmp-4242-0a1b2c3d-filters.png": "another script's figure, being written"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    runs.write_history(tmp_path / runs.HISTORY, history[:1])  # killed before history.csv
    state = {"epoch": 2, "history": history, "staged": staged}
    for _ in range(2):  # a second recovery finds nothing to do
        runs.recover(tmp_path, state)
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            ".tmp-4242-0a1b2c3d-filters.png", "best.weights.h5", "history.csv",
            "last.weights.h5"]
        assert (tmp_path / "last.weights.h5").read_text() == "epoch 2"
        assert (tmp_path / "best.weights.h5").read_text() == "epoch 2"
        assert runs.read_history(tmp_path) == history
    runs.write_history(tmp_path / runs.HISTORY, history)
    (tmp_path / runs.staged_name(1, "last")).write_text("epoch 1 of a run killed in it")
    runs.recover(tmp_path, None)  # no checkpoint: nothing committed, leftovers dropped
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".tmp-4242-0a1b2c3d-filters.png", "best.weights.h5", "history.csv", "last.weights.h5"]


def test_discard_staged_deletes_a_failed_commit_s_weights_only(tmp_path):
    staged = {"last": runs.staged_name(3, "last"), "best": runs.staged_name(3, "best")}
    (tmp_path / staged["last"]).write_text("epoch 3")  # best was never written: the disk filled
    (tmp_path / "last.weights.h5").write_text("epoch 2")
    runs.discard_staged(tmp_path, staged)
    assert [p.name for p in tmp_path.iterdir()] == ["last.weights.h5"]


def test_model_bytes_counts_the_weights_and_with_the_optimizer_its_state_too():
    model = small_model()  # 4 x 2 kernel + 2 biases, float32
    assert runs.model_bytes(model) == 10 * 4
    assert runs.model_bytes(model, optimizer=True) == 10 * 4  # not compiled: no optimizer
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    # Adam keeps two moments per weight, and its step count and learning rate
    assert runs.model_bytes(model, optimizer=True) > 3 * 10 * 4


# ---------------------------------------------------------------------------------------------
# Run names


@pytest.mark.parametrize("name", ["../x", "..", "../", ".", "/", "/tmp/elsewhere", "a/b", "a\0b"])
def test_a_run_name_is_one_folder_name(tmp_path, name):
    with pytest.raises(runs.RunError) as error:
        runs.run_folder(tmp_path / "logs", name)
    assert str(error.value) == (f"a run name is one folder name (the run goes into --out "
                                f"{tmp_path / 'logs'}), not {name!r}; pass --out for another "
                                "place")
    assert runs.run_folder(tmp_path / "logs", "paper-2") == tmp_path / "logs" / "paper-2"
    assert runs.run_folder(tmp_path, ".hidden") == tmp_path / ".hidden"
    assert runs.run_folder(tmp_path, "paper-2/") == tmp_path / "paper-2"  # a shell's completion


def test_the_runtime_block_is_read_back_beside_the_settings(tmp_path):
    assert runs.read_runtime(tmp_path) == {}
    Config(epochs=3).save(tmp_path / runs.CONFIG, {"command": "train.py --run x"})
    assert runs.read_runtime(tmp_path) == {"command": "train.py --run x"}
    assert runs.read_config(tmp_path) == Config(epochs=3)


def test_an_evaluation_is_read_only_while_it_is_of_the_weights_beside_it(tmp_path):
    from conftest import write_evaluation

    assert runs.read_evaluation(tmp_path) is None
    path = write_evaluation(tmp_path, 0.8)  # no weights file: nothing contradicts it
    assert runs.read_evaluation(tmp_path)["accuracy"] == 0.8
    weights = tmp_path / "best.weights.h5"
    weights.write_bytes(b"the weights")
    write_evaluation(tmp_path, 0.8)
    assert runs.read_evaluation(tmp_path)["weights_sha256"] == runs.sha256(weights)
    weights.write_bytes(b"weights trained since")
    again = f"run evaluate.py --run {tmp_path} --which best --split test again"
    with pytest.raises(runs.RunError) as error:
        runs.read_evaluation(tmp_path)
    assert str(error.value) == f"{path} is stale: it scored other weights than {weights}; {again}"
    path.write_text("[1, 2]")
    with pytest.raises(runs.RunError) as error:
        runs.read_evaluation(tmp_path)
    assert str(error.value) == f"{path} lacks its numbers; {again}"
