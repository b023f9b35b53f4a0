"""The report's network (network.py), its run configuration (config.py), losses, optimizers and
the Task IV parameter table (summary.py)."""

from models.config import PRESETS, Config, ConfigError

_NETWORK = ("CONV_LAYERS", "DENSE_LAYERS", "build_from_config", "build_model")


def __getattr__(name: str):
    # The network's names import Keras, so they load on first use: the scripts read Config and
    # its choices to parse their flags before TensorFlow starts (quietly, cli.start_quietly).
    if name in _NETWORK:
        from models import network

        return getattr(network, name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")


__all__ = ["CONV_LAYERS", "DENSE_LAYERS", "PRESETS", "Config", "ConfigError",
           "build_from_config", "build_model"]
