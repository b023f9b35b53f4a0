"""The report's network, its configuration and run folders."""

import os

# TensorFlow's C++ start-up chatter (oneDNN notices, missing CUDA) buries the scripts' output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from models.config import PRESETS, Config
from models.network import BATCHNORM_CHOICES, CONV_LAYERS, DENSE_LAYERS, build_model

__all__ = ["BATCHNORM_CHOICES", "CONV_LAYERS", "DENSE_LAYERS", "PRESETS", "Config", "build_model"]
