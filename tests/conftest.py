"""Shared fixtures: a tiny CIFAR-10 copy in the official python layout, and a tiny trained run."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data" / "cifar-10-jpeg"
TRAIN_PER_BATCH = 60
TEST_IMAGES = 100

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The kernels the scripts run with (cli.start_quietly), so that a test comparing a script's
# numbers with the same computation in this process compares the same arithmetic.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def make_images(n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    """Noise images whose colour depends on the class, so a network can learn something quickly."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    base = np.stack([(labels * 25) % 256, (labels * 71) % 256, (labels * 131) % 256], -1)
    noisy = base[:, None, None, :] + rng.normal(0, 40, (n, 32, 32, 3))
    images = np.clip(noisy, 0, 255).astype(np.uint8)
    return images, labels.tolist()


def write_batch(path: Path, images: np.ndarray, labels: list[int], label: bytes) -> None:
    """One batch file as the official ones are: rows of 1024 R, 1024 G, 1024 B; protocol 2."""
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)
    batch = {b"batch_label": label, b"labels": labels, b"data": rows,
             b"filenames": [f"img_{i}.png".encode() for i in range(len(images))]}
    path.write_bytes(pickle.dumps(batch, protocol=2))


def write_cifar(folder: Path, train_per_batch: int = TRAIN_PER_BATCH,
                test_images: int = TEST_IMAGES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, 6):
        images, labels = make_images(train_per_batch, seed=i)
        write_batch(folder / f"data_batch_{i}", images, labels, f"training batch {i} of 5".encode())
    images, labels = make_images(test_images, seed=99)
    write_batch(folder / "test_batch", images, labels, b"testing batch 1 of 1")
    meta = {b"label_names": [n.encode() for n in ("airplane", "automobile", "bird", "cat", "deer",
                                                    "dog",
                                                    "frog", "horse", "ship", "truck")]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def write_evaluation(folder: Path, accuracy: float, loss: float = 1.0, **numbers) -> Path:
    """evaluate.py's JSON of a run's best weights, as evaluate.py writes it: the numbers and the
    digest of the weights they are of (of best.weights.h5 where the folder has one)."""
    import runs

    weights = folder / runs.WEIGHTS["best"]
    digest = runs.sha256(weights) if weights.exists() else "0" * 64
    path = runs.eval_json(folder, "best", "test")
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"accuracy": accuracy, "loss": loss, "weights_sha256": digest,
                                **numbers}))
    return path


@pytest.fixture(scope="session")
def tiny_cifar(tmp_path_factory) -> Path:
    """A folder in the official layout: 5 x 60 training images, 100 test images."""
    return write_cifar(tmp_path_factory.mktemp("cifar") / "cifar-10-batches-py")


@pytest.fixture(scope="session")
def tiny_tarball(tiny_cifar, tmp_path_factory) -> Path:
    """The same data as the official cifar-10-python.tar.gz (folder cifar-10-batches-py inside)."""
    path = tmp_path_factory.mktemp("tar") / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(tiny_cifar, arcname="cifar-10-batches-py")
    return path


def run_script(*args: str, timeout: float = 300,
               env: dict | None = None) -> subprocess.CompletedProcess:
    """Run one of the project's scripts the way a user does, from the project root."""
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})})


@pytest.fixture(scope="session")
def tiny_run(tiny_cifar, tmp_path_factory) -> Path:
    """A run folder made by train.py: 2 epochs on the tiny data, fp32, written like any real run."""
    out = tmp_path_factory.mktemp("runs")
    result = run_script("train.py", "--data-dir", str(tiny_cifar), "--epochs", "2",
                        "--val-size", "50", "--batch-size", "50", "--precision", "fp32",
                        "--run", "tiny", "--out", str(out), "--verbose", "0")
    assert result.returncode == 0, result.stderr[-3000:]
    return out / "tiny"


@pytest.fixture(scope="session")
def random_run(tiny_cifar, tmp_path_factory) -> Path:
    """A run folder as the analyses read one, made in this process without training: config.json
    and seeded random best and last weights (the analysis tests need a network, not a good one;
    tiny_run, which trains in a subprocess, is for the end-to-end tests)."""
    import keras

    from models import Config
    from models.network import build_from_config

    folder = tmp_path_factory.mktemp("random") / "random"
    folder.mkdir()
    config = Config(data_dir=str(tiny_cifar), val_size=50, batch_size=50, precision="fp32")
    config.save(folder / "config.json", {})
    for seed, which in enumerate(("best", "last")):
        keras.utils.set_random_seed(seed)
        build_from_config(config).save_weights(folder / f"{which}.weights.h5")
    return folder


@pytest.fixture
def shared_data() -> Path:
    """The real CIFAR-10 copy beside the checkout; tests that need it skip where it is absent."""
    if not (SHARED_DATA / "test_batch").exists():
        pytest.skip(f"no CIFAR-10 copy at {SHARED_DATA}")
    return SHARED_DATA


def random_network(seed: int, images: int):
    """The report's network with batch norm after every conv (random weights, seeded), and
    `images` uniform-noise images: a network to run the gradient methods on without training."""
    import keras

    from models.network import build_model

    keras.utils.set_random_seed(seed)
    pixels = np.random.default_rng(seed).uniform(0, 255, (images, 32, 32, 3)).astype(np.float32)
    return build_model(batchnorm="all"), pixels


def kill_after_epochs(args: list[str], run: Path, epochs: int, timeout: float = 240) -> None:
    """Start a script as a user would, wait until its run folder's history.csv lists `epochs`
    epochs, then kill -9 it wherever it is (in an epoch, its commit or its summaries)."""
    import signal
    import time

    import runs

    process = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    try:
        deadline = time.monotonic() + timeout
        while len(runs.read_history(run)) < epochs:
            assert process.poll() is None, f"the run ended before epoch {epochs}"
            assert time.monotonic() < deadline, "the run never got going"
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def blocking(package: str) -> str:
    """A sitecustomize.py, imported first by every Python process started with its folder on
    PYTHONPATH: any import of the package then fails as it does where it is not installed."""
    return f"""import sys


class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == {package!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, Block())
"""


def without(package: str, folder: Path) -> dict[str, str]:
    """The environment variables that make `package` look uninstalled to a child process."""
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(blocking(package))
    return {"PYTHONPATH": str(folder)}


@pytest.fixture
def without_tensorflow(tmp_path) -> dict[str, str]:
    """The environment of a JAX machine without TensorFlow, checked to be one; skips where jax is
    not installed (.ci/run installs it)."""
    pytest.importorskip("jax")
    env = {"KERAS_BACKEND": "jax", **without("tensorflow", tmp_path / "no-tensorflow")}
    probe = subprocess.run([sys.executable, "-c", "import tensorflow"], capture_output=True,
                           text=True, env={**os.environ, **env})
    assert "No module named 'tensorflow'" in probe.stderr
    return env
