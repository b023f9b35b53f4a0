"""The GPU machine's setup on the CPU: the JAX backend with TensorFlow not installed. study.py
seeds runs train.py and evaluate.py as a user would, so one study covers all three scripts."""

from __future__ import annotations

import json

import pytest
from conftest import run_script


@pytest.mark.slow
def test_train_evaluate_and_study_run_on_jax_without_tensorflow(tiny_cifar, tmp_path,
                                                                without_tensorflow):
    out = tmp_path / "seeds"
    result = run_script("study.py", "seeds", "--preset", "report", "--seeds", "0", "--epochs",
                        "1", "--data-dir", str(tiny_cifar), "--out", str(out), "--",
                        "--val-size", "50", "--batch-size", "50", "--verbose", "0",
                        env=without_tensorflow)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    run = out / "seed-0"
    runtime = json.loads((run / "config.json").read_text())["runtime"]
    assert runtime["backend"] == "jax" and "tensorflow" not in runtime
    log = (run / "train.log").read_text().splitlines()
    assert log[1] == ("warning: no TensorBoard event files: writing them needs TensorFlow, which "
                      "is not installed (--tensorboard 0 asks for none)")
    assert not (run / "tensorboard").exists()
    assert len(log) == 3 and log[2].startswith("epoch 1/1")
    scored = json.loads((run / "eval" / "best-test.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runs"][0]["test_accuracy"] == scored["accuracy"]
