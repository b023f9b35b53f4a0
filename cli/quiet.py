"""Start TensorFlow without the lines its C++ runtime prints at start-up, with oneDNN's kernels."""

from __future__ import annotations

import importlib.util
import os
import sys

# The package each Keras backend imports (keras.src.backend): named by KERAS_BACKEND.
BACKEND_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch",
                    "numpy": "numpy", "openvino": "openvino"}


def missing_backend() -> str | None:
    """Why Keras cannot start here, if the backend KERAS_BACKEND names is not installed: Keras
    would fail with a traceback at its import, before any script could parse a flag."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    package = BACKEND_PACKAGES.get(backend)
    if package is None:
        return (f"KERAS_BACKEND={backend} is not a Keras backend; choose one of "
                f"{', '.join(BACKEND_PACKAGES)}")
    try:
        found = importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        found = False
    if found:
        return None
    return (f"KERAS_BACKEND={backend} needs the {package} package, which is not installed here: "
            f"pip install {package}, or unset KERAS_BACKEND")


def check_backend() -> None:
    """End the script in one line (exit status 2) where the Keras backend is not installed."""
    missing = missing_backend()
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        sys.exit(2)


def start_quietly() -> None:
    """Load TensorFlow with its start-up notices (oneDNN, a failed CUDA probe on CPU machines)
    silenced; call it first, before anything imports Keras.

    Those lines come from C++ before logging is configured, so no log level silences them: file
    descriptor 2 is pointed at /dev/null while TensorFlow loads and probes its devices, then put
    back. A library import never does this; the scripts call it explicitly. A backend that is not
    installed ends the script here, in one line (exit status 2).
    """
    check_backend()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # TensorFlow turns oneDNN's convolution and matmul kernels on by itself only on CPUs with
    # AVX-512 or AMX; on AVX2-only CPUs it keeps Eigen's, which train the report's network more
    # slowly (README, Speed). Read once, when TensorFlow loads; TF_ENABLE_ONEDNN_OPTS=0 still wins.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    if "tensorflow" in sys.modules or os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow

            tensorflow.config.list_physical_devices("GPU")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
