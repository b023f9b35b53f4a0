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


def __getattr__(name: str):
    # The input pipeline imports Keras, so it loads on first use: the data's checks and the
    # split's names cost no TensorFlow start.
    if name in ("Augmentation", "make_dataset"):
        from data import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'data' has no attribute {name!r}")


__all__ = ["CLASS_NAMES", "SPLITS", "Augmentation", "Cifar10", "DataError", "load_cifar10",
           "make_dataset", "select_split", "split_validation"]
