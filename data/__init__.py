"""CIFAR-10: loading (any local copy or Keras' download) and the training input pipeline."""

from data.cifar10 import (
           CLASS_NAMES,
           SPLITS,
           Cifar10,
           DataError,
           load_cifar10,
           select_split,
           split_validation,
)
from data.pipeline import make_dataset

__all__ = ["CLASS_NAMES", "SPLITS", "Cifar10", "DataError", "load_cifar10", "make_dataset",
           "select_split", "split_validation"]
