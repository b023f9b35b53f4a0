"""The evaluation package and evaluate.py: the same numbers as Keras and as training,
deterministic, and one-line errors.

Tests that need the tiny_run fixture (train.py in a subprocess) or run evaluate.py in one are
marked slow; the others score an untrained network's weights in-process.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from conftest import run_script, write_cifar

import evaluate
import runs
from cli import main_with_errors
from data import load_cifar10
from data.pipeline import make_dataset
from evaluation import EvaluationError, present, scoring
from models import Config
from models.network import build_model
from runs.weights import file_layout, load_network, weights_layout

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")


@pytest.fixture(scope="module")
def result(tiny_run, tiny_cifar) -> dict:
    return scoring.evaluate_run(str(tiny_run), data_dir=str(tiny_cifar))


@pytest.fixture(scope="module")
def fresh_weights(tmp_path_factory) -> Path:
    """An untrained report network's weights, alone in a folder (no config.json): its
    predictions vary."""
    keras.utils.set_random_seed(1)
    path = tmp_path_factory.mktemp("fresh") / "fresh.weights.h5"
    build_model().save_weights(str(path))
    return path


def keras_evaluate(target: str, images: np.ndarray, labels: np.ndarray) -> dict:
    model, _, _ = load_network(target)
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model.evaluate(make_dataset(images, labels, 50), verbose=0, return_dict=True)


# ---------------------------------------------------------------------------------------------
# The numbers


@pytest.mark.parametrize("which_target", [pytest.param("tiny_run", marks=pytest.mark.slow),
                                          "fresh_weights"])
def test_accuracy_equals_keras_evaluate(which_target, request, tiny_cifar):
    target = str(request.getfixturevalue(which_target))
    data = load_cifar10(str(tiny_cifar))
    ours = scoring.evaluate_run(target, data_dir=str(tiny_cifar), batch_size=32)
    theirs = keras_evaluate(target, data.x_test, data.y_test)
    assert ours["n_images"] == 100
    assert ours["correct"] == round(theirs["accuracy"] * 100)
    assert ours["accuracy"] == pytest.approx(theirs["accuracy"], abs=1e-7)
    assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-5)


@pytest.mark.slow
def test_numbers_agree_with_each_other(result):
    confusion = np.array(result["confusion_matrix"])
    assert confusion.shape == (10, 10) and confusion.sum() == result["n_images"] == 100
    assert np.trace(confusion) == result["correct"] == round(result["accuracy"] * 100)
    assert result["class_names"] == list(CLASSES) and list(result["per_class"]) == list(CLASSES)
    for i, name in enumerate(CLASSES):
        assert result["per_class"][name] == confusion[i, i] / confusion[i].sum()
    assert all(confusion[CLASSES.index(c["true"]), CLASSES.index(c["predicted"])] == c["count"]
               for c in result["top_confusions"])


def test_score_by_hand():
    """Three classes, four images: two right, two taken for class 0; class 2 has no images."""
    probabilities = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.6, 0.3, 0.1],
                              [0.5, 0.4, 0.1]], np.float32)
    scored = scoring.score(probabilities, np.array([0, 1, 1, 1]), ("a", "b", "c"))
    assert scored["accuracy"] == 0.5 and scored["correct"] == 2
    assert scored["per_class"] == {"a": 1.0, "b": 1 / 3, "c": None}
    assert scored["confusion_matrix"] == [[1, 0, 0], [2, 1, 0], [0, 0, 0]]
    assert scored["top_confusions"] == [{"true": "b", "predicted": "a", "count": 2}]
    picked = np.array([0.7, 0.5, 0.3, 0.4], np.float32).astype(np.float64)
    assert scored["loss"] == pytest.approx(-np.log(picked).mean(), rel=1e-12)


def test_top_confusions_by_hand_most_first_ties_by_true_then_predicted_class():
    pairs = [(1, 0)] * 3 + [(2, 0)] * 2 + [(0, 2)] * 2 + [(3, 1)] + [(0, 0), (3, 3)]
    labels, predicted = (np.array(column) for column in zip(*pairs, strict=True))
    scored = scoring.score(np.eye(4, dtype=np.float32)[predicted] * 0.9 + 0.025, labels,
                              ("a", "b", "c", "d"))
    assert [(c["true"], c["predicted"], c["count"]) for c in scored["top_confusions"]] == [
        ("b", "a", 3), ("a", "c", 2), ("c", "a", 2), ("d", "b", 1)]


def test_nll_clips_as_keras_does():
    assert scoring.nll(np.array([[0.0, 1.0]]), np.array([0])) == pytest.approx(-np.log(1e-7))


def test_weights_name():
    assert scoring.weights_name(Path("run/best.weights.h5")) == "best"
    assert scoring.weights_name(Path("old.h5")) == "old"
    assert scoring.weights_name(Path("model.keras")) == "model"


@pytest.mark.slow
def test_numbers_equal_the_training_history(tiny_run, tiny_cifar, result):
    """best.weights.h5 is the epoch of the best validation accuracy; its numbers are that
    epoch's."""
    rows = runs.read_history(tiny_run)
    best = max(rows, key=lambda row: row["val_accuracy"])  # the first of equals, as training keeps
    assert result["accuracy"] == pytest.approx(best["test_accuracy"], abs=1e-7)
    assert result["loss"] == pytest.approx(best["test_loss"], rel=1e-5)
    val = scoring.evaluate_run(str(tiny_run), split="val", data_dir=str(tiny_cifar))
    assert val["n_images"] == 50  # the run's --val-size
    assert val["accuracy"] == pytest.approx(best["val_accuracy"], abs=1e-7)
    assert val["loss"] == pytest.approx(best["val_loss"], rel=1e-5)
    last = scoring.evaluate_run(str(tiny_run), which="last", data_dir=str(tiny_cifar))
    assert last["which"] == "last" and last["weights"] == str(tiny_run / "last.weights.h5")
    assert last["loss"] == pytest.approx(rows[-1]["test_loss"], rel=1e-5)
    train = scoring.evaluate_run(str(tiny_run), split="train", data_dir=str(tiny_cifar))
    assert train["n_images"] == 5 * 60 - 50


@pytest.mark.slow
def test_same_numbers_every_run(tiny_run, tiny_cifar, result):
    again = scoring.evaluate_run(str(tiny_run), data_dir=str(tiny_cifar))
    assert again == result  # every float to the last bit


@pytest.mark.slow
def test_float32_whatever_the_global_policy(tiny_run, tiny_cifar, result):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        assert scoring.evaluate_run(str(tiny_run), data_dir=str(tiny_cifar)) == result
        # the caller's policy is back
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_flip_tta_is_reported_beside_the_plain_number(fresh_weights, tiny_cifar):
    plain = scoring.evaluate_run(str(fresh_weights), data_dir=str(tiny_cifar))
    tta = scoring.evaluate_run(str(fresh_weights), data_dir=str(tiny_cifar), tta="flip")
    assert ({k: v for k, v in tta.items() if not k.startswith("tta")}
            == {k: v for k, v in plain.items() if k != "tta"})
    model, _, _ = load_network(str(fresh_weights))
    data = load_cifar10(str(tiny_cifar))
    x, y = data.x_test.astype(np.float32), data.y_test
    averaged = (model.predict(x, verbose=0) + model.predict(x[:, :, ::-1], verbose=0)) / 2
    assert tta["tta"] == "flip"
    assert tta["tta_correct"] == int((averaged.argmax(1) == y).sum())
    assert tta["tta_accuracy"] == tta["tta_correct"] / 100
    assert tta["tta_loss"] == pytest.approx(-np.log(averaged[np.arange(100), y]).mean(), rel=1e-5)


@pytest.mark.slow
def test_a_run_uses_its_own_data_and_val_size(tiny_run, tiny_cifar, monkeypatch, result):
    monkeypatch.delenv("CIFAR10_DIR", raising=False)
    assert scoring.evaluate_run(str(tiny_run)) == result
    assert result["data_source"] == str(tiny_cifar)


def test_the_weights_check_reads_keras_own_layout(tmp_path):
    for variant in ({"batchnorm": "output"}, {"batchnorm": "all"},
                    {"batchnorm": "none", "conv_dropout": 0}):
        model = build_model(**variant)
        model.save_weights(str(tmp_path / "w.weights.h5"))
        with h5py.File(tmp_path / "w.weights.h5") as file:
            assert file_layout(file) == {group: shapes
                                         for group, (_, shapes) in weights_layout(model).items()}
    names = {group: name for group, (name, _) in weights_layout(build_model("all")).items()}
    assert names["batch_normalization"] == "CONV1_BN" and names["batch_normalization_4"] == "BN"


def test_library_errors_are_evaluation_errors(fresh_weights, tiny_cifar):
    model = build_model()
    with pytest.raises(EvaluationError) as error:
        scoring.predict(model, np.zeros((2, 32, 32, 3), np.uint8), 0)
    assert str(error.value) == "batch_size must be at least 1, not 0"
    with pytest.raises(EvaluationError) as error:
        scoring.evaluate_run(str(fresh_weights), data_dir=str(tiny_cifar), tta="crop")
    assert str(error.value) == "tta must be one of flip, not 'crop'"
    assert issubclass(EvaluationError, ValueError)


def test_run_config_names_the_network_variant(tmp_path, fresh_weights):
    assert scoring.run_config(None) == Config()
    assert scoring.run_config(str(fresh_weights)) == Config()  # no config.json beside it
    run = tmp_path / "bn-run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"batchnorm": "all"}))
    assert scoring.run_config(str(run)).batchnorm == "all"
    shutil.copy(fresh_weights, run / "best.weights.h5")
    assert scoring.run_config(str(run / "best.weights.h5")).batchnorm == "all"
    with pytest.raises(runs.RunError, match="no run folder 'no-such-run'"):
        scoring.run_config("no-such-run")


def test_default_json_path():
    result = {"weights": "logs/r/best.weights.h5", "which": "best", "split": "val"}
    assert present.default_json_path(result) == Path("logs/r/eval/best-val.json")
    assert present.default_json_path(result, "o") == Path("o/best-val.json")


# ---------------------------------------------------------------------------------------------
# The command line


@pytest.mark.slow
def test_cli_prints_one_screen_and_writes_json_and_png(tiny_run, tiny_cifar, tmp_path, result):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.json", "best.weights.h5"):
        shutil.copy(tiny_run / name, run / name)
    # No --data-dir and no $CIFAR10_DIR: the run's config.json says where its data is.
    done = run_script("evaluate.py", str(run), env={"CIFAR10_DIR": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    saved = json.loads((run / "eval" / "best-test.json").read_text())
    same = ("loss", "accuracy", "correct", "per_class", "confusion_matrix", "top_confusions",
            "weights_sha256", "n_images", "data_source")
    # another process, the same bits
    assert {k: saved[k] for k in same} == {k: result[k] for k in same}
    assert saved["weights"] == str(run / "best.weights.h5") and saved["split"] == "test"
    png = (run / "eval" / "best-test-confusion.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    out = done.stdout
    assert (f"test loss {result['loss']:.4f}   test accuracy {result['accuracy']:.4f}  "
            f"({result['correct']} / 100)") in out
    confusion = result["confusion_matrix"]
    for i, name in enumerate(CLASSES):
        accuracy = f"{result['per_class'][name]:.4f}"
        assert f"\n{name:<12}{accuracy:>9}{confusion[i][i]:>10}{sum(confusion[i]):>8}   " in out
    assert "top confusions (true -> predicted: images)" in out
    assert out.endswith(f"\nwrote {run / 'eval/best-test.json'}\n"
                        f"wrote {run / 'eval/best-test-confusion.png'}\n")
    assert len(out.splitlines()) <= 30 and "Traceback" not in done.stderr


def test_out_and_json_place_the_files(fresh_weights, tiny_cifar, tmp_path, capsys):
    evaluate.main([str(fresh_weights), "--data-dir", str(tiny_cifar), "--out", str(tmp_path / "o"),
                   "--tta", "flip"])
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["fresh-test-confusion.png",
                                                                 "fresh-test.json"]
    saved = json.loads((tmp_path / "o" / "fresh-test.json").read_text())
    assert saved["which"] == "fresh" and saved["tta"] == "flip" and 0 <= saved["tta_accuracy"] <= 1
    evaluate.main(["--run", str(fresh_weights), "--data-dir", str(tiny_cifar), "--json",
                   str(tmp_path / "j/r.json")])
    assert sorted(p.name for p in (tmp_path / "j").iterdir()) == ["fresh-test-confusion.png",
                                                                 "r.json"]
    evaluate.main([str(fresh_weights), "--data-dir", str(tiny_cifar)])  # no run: beside the weights
    assert (fresh_weights.parent / "eval" / "fresh-test.json").is_file()
    assert "wrote" in capsys.readouterr().out


def test_a_full_disk_prints_the_numbers_then_one_line_naming_the_file(fresh_weights, tiny_cifar,
                                                                     tmp_path, monkeypatch,
                                                                     capsys):
    from test_bench import half_then_full_disk

    half_then_full_disk(monkeypatch)
    json_path = tmp_path / "scored.json"
    with pytest.raises(SystemExit) as exit_:
        main_with_errors(lambda: evaluate.main([str(fresh_weights), "--data-dir",
                                                str(tiny_cifar), "--json", str(json_path)]))
    out, err = capsys.readouterr()
    assert exit_.value.code == 2 and "test accuracy" in out.lower()
    assert err == f"error: No space left on device: {json_path}\n"
    assert list(tmp_path.iterdir()) == []


def test_the_confusion_png_is_the_same_bytes_every_time(fresh_weights, tiny_cifar, tmp_path):
    scored = scoring.evaluate_run(str(fresh_weights), data_dir=str(tiny_cifar))
    first = present.plot_confusion(scored, tmp_path / "a.png").read_bytes()
    assert present.plot_confusion(scored, tmp_path / "b.png").read_bytes() == first


# ---------------------------------------------------------------------------------------------
# Bad input: one line, exit status 2, no traceback


def fails(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main_with_errors(lambda: evaluate.main(list(argv)))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error: " in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def test_error_missing_path(capsys, tmp_path):
    assert "no run folder 'no-such-run'" in fails(capsys, "no-such-run")
    gone = tmp_path / "gone.weights.h5"
    assert fails(capsys, str(gone)) == f"error: {gone} does not exist"
    assert fails(capsys) == ("error: name a run folder or a weights file to evaluate (or pass "
                             "--summary); see --help")


def test_error_bad_flags(capsys, fresh_weights):
    assert fails(capsys, str(fresh_weights), "--batch-size", "0").startswith(
        "error: argument --batch-size: must be at least 1, not 0; see ")
    assert fails(capsys, "a", "--run", "b").startswith(
        "error: name the run once: as RUN_OR_WEIGHTS or as --run; see ")
    assert fails(capsys, "a", "--out", "o", "--json", "j.json").startswith(
        "error: pass --out or --json, not both; see ")


def test_error_not_hdf5(capsys, tmp_path):
    (tmp_path / "notes.weights.h5").write_text("these are not weights\n")
    assert fails(capsys, str(tmp_path / "notes.weights.h5")).endswith(
        "notes.weights.h5 is not an HDF5 weights file")


def test_error_truncated_hdf5(capsys, tmp_path, fresh_weights):
    raw = fresh_weights.read_bytes()
    (tmp_path / "cut.weights.h5").write_bytes(raw[:len(raw) // 2])
    assert "cut.weights.h5 is truncated or corrupt (" in fails(capsys,
                                                                str(tmp_path / "cut.weights.h5"))


def test_error_weights_of_another_variant(capsys, tmp_path, fresh_weights):
    # No config.json: the report's network.
    build_model("all").save_weights(str(tmp_path / "all.weights.h5"))
    message = fails(capsys, str(tmp_path / "all.weights.h5"))
    assert message.count("does not fit this network") == 1, message
    assert ("all.weights.h5 does not fit this network: layer BN holds (10,) (10,) (10,) (10,), "
            "the file (64,) (64,) (64,) (64,) (and 4 more); the file has 5 batch_normalization "
            "layers, the network 1. Weights of another network variant?") in message
    run = tmp_path / "no-bn-run"  # a run without batch norm holding the report network's weights
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"batchnorm": "none"}))
    shutil.copy(fresh_weights, run / "best.weights.h5")
    assert ("the file holds (10,) (10,) (10,) (10,) for a layer the network lacks "
            "(batch_normalization)") in fails(capsys, str(run))


def test_error_run_folder_without_weights(capsys, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert fails(capsys, str(tmp_path)) == (f"error: run folder {tmp_path} has no best.weights.h5 "
                                            "(was it trained?)")
    assert "has no last.weights.h5" in fails(capsys, str(tmp_path), "--which", "last")


def test_error_data_folder_missing_a_batch(capsys, tmp_path, fresh_weights):
    data = write_cifar(tmp_path / "cifar", train_per_batch=2, test_images=4)
    (data / "data_batch_3").unlink()
    assert f"error: {data} lacks data_batch_3;" in fails(capsys, str(fresh_weights), "--data-dir",
                                                         str(data))


def test_error_corrupt_batch(capsys, tmp_path, fresh_weights):
    data = write_cifar(tmp_path / "cifar", train_per_batch=2, test_images=4)
    raw = (data / "test_batch").read_bytes()
    (data / "test_batch").write_bytes(raw[:len(raw) // 2])
    message = fails(capsys, str(fresh_weights), "--data-dir", str(data))
    assert message == "error: test_batch is corrupt (UnpicklingError: pickle data was truncated)"


@pytest.mark.slow
def test_error_exit_status_from_the_shell():
    done = run_script("evaluate.py", "no-such-run")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines()[-1].startswith("error: no run folder 'no-such-run'")
    assert "Traceback" not in done.stderr
