"""The report's network, its configuration and run folders.

Import this package before Keras: it starts TensorFlow without the lines its C++ runtime prints at
start-up (oneDNN notices, a failed CUDA probe on CPU machines), which no log level silences.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _start_tensorflow_quietly() -> None:
    # Those lines come from C++ before logging is configured, so the file descriptor itself is
    # pointed at /dev/null while TensorFlow loads and probes its devices.
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


_start_tensorflow_quietly()

from models.config import PRESETS, Config  # noqa: E402
from models.network import BATCHNORM_CHOICES, CONV_LAYERS, DENSE_LAYERS, build_model  # noqa: E402

__all__ = ["BATCHNORM_CHOICES", "CONV_LAYERS", "DENSE_LAYERS", "PRESETS", "Config", "build_model"]
