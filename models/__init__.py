"""The report's network (network.py), its run configuration (config.py), losses, optimizers and
the Task IV parameter table (summary.py)."""

from models.config import PRESETS, Config, ConfigError

_NETWORK = ("BATCHNORM_CHOICES", "CONV_LAYERS", "DENSE_LAYERS", "build_from_config", "build_model")


def __getattr__(name: str):
    # The network's names import Keras, so they load on first use: `python -m models` runs this
    # file before models/__main__.py, which must start TensorFlow quietly before Keras loads.
    if name in _NETWORK:
        from models import network

        return getattr(network, name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")


__all__ = ["BATCHNORM_CHOICES", "CONV_LAYERS", "DENSE_LAYERS", "PRESETS", "Config", "ConfigError",
           "build_from_config", "build_model"]
