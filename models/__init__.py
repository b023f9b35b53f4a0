"""The report's network (network.py), its run configuration (config.py), losses, optimizers and
the Task IV parameter table (summary.py). Only the configuration is named here; the modules that
load Keras are imported by their own name (`from models.network import build_model`), so that a
script parses its flags from Config before TensorFlow starts."""

from models.config import PRESETS, Config, ConfigError

__all__ = ["PRESETS", "Config", "ConfigError"]
