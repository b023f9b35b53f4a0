"""tools/gpu_runs.sh, checked on the CPU as it runs on the lent GPU machine: the JAX backend with
TensorFlow absent, runs started together from a plan, each scored, packed into parts."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile

import pytest
from conftest import ROOT

import runs


@pytest.mark.slow
def test_gpu_runs_trains_a_plan_at_once_and_packs_the_run_folders(tiny_cifar, tmp_path,
                                                                   without_tensorflow):
    plan = tmp_path / "plan.txt"
    tiny = "--epochs 1 --limit 100 --val-size 50 --batch-size 50"
    plan.write_text(f"# name, then train.py flags\nfirst {tiny}\n\nsecond {tiny} --seed 1\n")
    out, wheels = tmp_path / "out", tmp_path / "no-wheels"
    wheels.mkdir()
    env = {**os.environ, **without_tensorflow, "GPU_RUNS": str(tmp_path / "runs"),
           "WHEELS": str(wheels), "KEEP": "first", "PYTHON": sys.executable}
    result = subprocess.run(["bash", "tools/gpu_runs.sh", str(plan), str(tiny_cifar), str(out)],
                            cwd=ROOT, capture_output=True, text=True, env=env, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == ["== first",
                                                                          "== second"]
    assert all("test loss" in line for line in result.stdout.splitlines())
    parts = sorted(out.iterdir())
    # the kept weights (25 MB) need two parts of at most 15 MiB, as the device returns 16
    assert [p.name for p in parts] == ["runs.tar.gz.part-00", "runs.tar.gz.part-01"]
    assert all(p.stat().st_size <= 15 * 2**20 for p in parts)
    with tarfile.open(fileobj=io.BytesIO(b"".join(p.read_bytes() for p in parts))) as tar:
        tar.extractall(tmp_path / "back", filter="data")
    back = tmp_path / "back"
    for name, seed in (("first", 0), ("second", 1)):
        folder = back / name
        assert [row["epoch"] for row in runs.read_history(folder)] == [1]
        config = json.loads((folder / runs.CONFIG).read_text())
        assert (config["seed"], config["runtime"]["backend"]) == (seed, "jax")
        scored = json.loads((folder / "eval" / "best-test.json").read_text())
        assert scored["which"] == "best" and scored["n_images"] == 100
        assert not (folder / runs.CHECKPOINT).exists()
    assert (back / "first" / "best.weights.h5").exists()  # KEEP names it
    assert not (back / "second" / "best.weights.h5").exists()
