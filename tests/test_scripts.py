"""What every script promises a user on the command line: --help, and one `error:` line with exit
status 2 (never a traceback) for a bad setting or an output folder it cannot write into.

The scripts run as `__main__` (runpy) one after another in a single Python process, so that
TensorFlow starts once for all of them, not once a script."""

from __future__ import annotations

import json

import pytest
from conftest import run_script, without

SCRIPTS = ("train.py", "evaluate.py", "visualize_filters.py", "neurons.py", "guided_backprop.py",
           "explain.py", "study.py", "report.py", "tools/bench.py")

DRIVER = """
import contextlib, io, json, runpy, sys
results = []
for argv in json.loads(sys.argv[1]):
    out, err, code = io.StringIO(), io.StringIO(), 0
    sys.argv = argv
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            runpy.run_path(argv[0], run_name="__main__")
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        except BaseException as error:
            code, err = 1, io.StringIO("Traceback: " + repr(error))
    results.append({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
print(json.dumps(results))
"""


def run_all(commands: list[list[str]]) -> list[dict]:
    result = run_script("-c", DRIVER, json.dumps(commands), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_one_error_line(result: dict, expected: str) -> None:
    assert result["code"] == 2, result
    assert "Traceback" not in result["stderr"]
    last = result["stderr"].strip().splitlines()[-1]
    assert last.startswith("error: ") or ": error: " in last, last
    assert expected in last, last


# Each script with flags it accepts, so that it gets past parsing to where Keras would load.
VALID = {"train.py": [], "evaluate.py": ["--summary"], "visualize_filters.py": ["--run", "r"],
         "neurons.py": ["--run", "r"], "guided_backprop.py": ["--run", "r"],
         "explain.py": ["gradcam", "--run", "r"], "study.py": ["seeds", "--preset", "budget"],
         "report.py": ["r"], "tools/bench.py": []}


def test_a_keras_backend_that_is_not_installed_is_one_line_in_every_script_after_its_help(
        tmp_path):
    env = {"KERAS_BACKEND": "jax", **without("jax", tmp_path / "no-jax")}
    assert sorted(VALID) == sorted(SCRIPTS)
    for script, flags in VALID.items():
        helped = run_script(script, "--help", env=env)  # flags parse before Keras loads
        assert (helped.returncode, helped.stderr) == (0, ""), script
        result = run_script(script, *flags, env=env)
        assert (result.returncode, result.stdout, result.stderr) == (
            2, "", "error: KERAS_BACKEND=jax needs the jax package, which is not installed "
                   "here: pip install jax, or unset KERAS_BACKEND\n"), script
    result = run_script("train.py", env={"KERAS_BACKEND": "theano"})
    assert result.stderr == ("error: KERAS_BACKEND=theano is not a Keras backend; choose one of "
                             "tensorflow, jax, torch, numpy, openvino\n")


def test_help_and_a_bad_flag_answer_before_tensorflow_loads(tmp_path):
    env = without("tensorflow", tmp_path / "no-tensorflow")  # an import of it would fail
    for script in SCRIPTS:
        helped = run_script(script, "--help", env=env)
        assert (helped.returncode, helped.stderr) == (0, ""), script
        assert helped.stdout.startswith("usage: "), script
        bad = run_script(script, "--no-such-flag", env=env)
        assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1, (script, bad.stderr)
        assert bad.stderr.startswith("error: ") and "--help" in bad.stderr, script


BAD_SETTINGS = [
    (["--epochs", "0"], "epochs must be at least 1, not 0"),
    (["--learning-rate", "-1"], "learning_rate must be above 0, not -1.0"),
    (["--learning-rate", "inf"], "learning_rate must be a finite number, not inf"),
    (["--dropout", "1.5"], "conv_dropout must be in [0, 1), not 1.5"),
    (["--run", "../elsewhere"], "../elsewhere"),
]


@pytest.mark.slow
def test_train_py_refuses_a_bad_setting_before_writing_anything(tiny_cifar, tmp_path):
    out = tmp_path / "runs"
    base = ["train.py", "--data-dir", str(tiny_cifar), "--out", str(out)]
    results = run_all([[*base, *flags] for flags, _ in BAD_SETTINGS])
    for (_, expected), result in zip(BAD_SETTINGS, results, strict=True):
        assert_one_error_line(result, expected)
    assert not (tmp_path / "elsewhere").exists()
    assert not out.exists() or not any(out.iterdir())


WRITERS = [
    ["train.py", "--run", "new", "--epochs", "1", "--val-size", "50", "--batch-size", "50"],
    ["evaluate.py", "{run}"],
    ["visualize_filters.py", "--run", "{run}", "--no-activations"],
    ["neurons.py", "--run", "{run}", "--images", "20"],
    ["guided_backprop.py", "--run", "{run}", "--images", "20", "-k", "2", "--count", "2"],
    ["explain.py", "gradcam", "--run", "{run}", "--images", "20"],
    ["report.py", "{run}", "--no-analyses"],
]


@pytest.mark.slow
def test_an_output_folder_that_is_a_file_is_one_line(tiny_run, tiny_cifar, tmp_path):
    before = sorted(p.relative_to(tiny_run) for p in tiny_run.rglob("*"))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    commands = [[*(part.format(run=tiny_run) for part in command), "--data-dir", str(tiny_cifar),
                 "--out", str(blocker / "out")] for command in WRITERS]
    for result in run_all(commands):
        assert_one_error_line(result, str(blocker))
    assert blocker.read_text() == "not a folder"
    assert sorted(p.relative_to(tiny_run) for p in tiny_run.rglob("*")) == before


SEEDED = [["explain.py", "activation-max", "--run", "r"], ["explain.py", "sanity", "--run", "r"],
          ["guided_backprop.py", "--run", "r"]]


@pytest.mark.slow
def test_a_negative_seed_is_one_line_in_every_analysis_script_that_takes_one():
    for result in run_all([[*command, "--seed", "-1"] for command in SEEDED]):
        assert_one_error_line(result, "argument --seed: must be at least 0, not -1")


BAD_FLAGS = [
    (["train.py", "--epochs", "ten"],
     "error: argument --epochs: invalid int value: 'ten'; see train.py --help"),
    (["evaluate.py", "--which", "nope"],
     "error: argument --which: invalid choice: 'nope' (choose from 'best', 'last'); see "
     "evaluate.py --help"),
    (["explain.py", "--run", "r"],
     "error: name the method first: explain.py METHOD --run ... (METHOD: gradcam, "
     "activation-max, sanity); see explain.py --help"),
    (["explain.py", "gradcam"],
     "error: the following arguments are required: --run; see explain.py gradcam --help"),
]


@pytest.mark.slow
def test_a_bad_flag_is_one_line_that_points_at_help():
    for (_, expected), result in zip(BAD_FLAGS, run_all([argv for argv, _ in BAD_FLAGS]),
                                     strict=True):
        assert (result["code"], result["stderr"]) == (2, expected + "\n")


def random_weights_run(folder, **settings):
    """A run folder with a config, a two-epoch history and random best weights, untrained."""
    import keras

    import runs
    from models import Config
    from models.network import build_from_config

    folder.mkdir(parents=True)
    config = Config(val_size=50, batch_size=50, precision="fp32", epochs=2, **settings)
    config.save(folder / runs.CONFIG, {})
    runs.write_history(folder / runs.HISTORY, [
        {"epoch": e, "learning_rate": 1e-3, "train_loss": 2.0, "train_accuracy": 0.2,
         "val_loss": 2.0, "val_accuracy": 0.1 * e, "test_loss": 2.0, "test_accuracy": 0.1,
         "seconds": 1.0} for e in (1, 2)])
    keras.utils.set_random_seed(len(str(folder)))
    build_from_config(config).save_weights(folder / runs.WEIGHTS["best"])
    return folder


@pytest.mark.slow
def test_the_scripts_read_a_run_s_own_training_images_trust_no_stale_numbers_and_adopt_no_run(
        tiny_cifar, tmp_path):
    from conftest import write_evaluation

    limited = random_weights_run(tmp_path / "limited", data_dir=str(tiny_cifar), limit=30)
    stale = random_weights_run(tmp_path / "stale", data_dir=str(tmp_path / "gone"))
    write_evaluation(stale, 0.4321)
    (stale / "best.weights.h5").write_bytes((limited / "best.weights.h5").read_bytes())
    other = random_weights_run(tmp_path / "seeds" / "seed-0", preset="tuned")
    neurons, report = run_all([
        ["neurons.py", "--run", str(limited), "--split", "train", "--images", "1000", "-k", "2",
         "--count", "2", "--out", str(tmp_path / "n")],
        ["report.py", str(stale), "--no-analyses", "--out", str(tmp_path / "r")]])
    assert neurons["code"] == 0, neurons
    assert json.loads((tmp_path / "n" / "neurons_CONV4.json").read_text())["images"] == 30
    assert report["code"] == 0, report
    markdown = (tmp_path / "r" / "report.md").read_text()
    assert "43.21%" not in markdown and "best-test.json is stale" in markdown
    study = run_script("study.py", "seeds", "--preset", "report", "--seeds", "0", "--out",
                       str(other.parent), "--epochs", "2")
    assert study.returncode == 2 and study.stderr.startswith(
        f"error: {other} holds another run (preset='tuned' (study: 'report')")
    assert len(study.stderr.splitlines()) == 1
