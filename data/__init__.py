"""CIFAR-10: reading any local copy or Keras' download, and the one rule for which copy
(cifar10.py, named here), and the training input pipeline (pipeline.py, imported by its own name,
`from data.pipeline import make_dataset`, because it loads Keras: this package's names cost no
TensorFlow start)."""

from data.cifar10 import (
    CLASS_NAMES,
    SPLITS,
    Cifar10,
    DataError,
    load_cifar10,
    select_split,
    split_validation,
)

__all__ = ["CLASS_NAMES", "SPLITS", "Cifar10", "DataError", "load_cifar10", "select_split",
           "split_validation"]
