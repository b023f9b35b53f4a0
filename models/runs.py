"""Run folders: rebuilding a run's exact network from its config.json and loading its weights."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import h5py
import keras

from models.cli import UserError, run_folder
from models.config import Config
from models.network import build_model

WEIGHTS = {"best": "best.weights.h5", "last": "last.weights.h5"}


def build_from_config(config: Config) -> keras.Model:
    """The network variant a run trained (batch-norm placement and dropout rates)."""
    return build_model(config.batchnorm, config.conv_dropout, config.fc_dropout)


def atomic_save(path: Path, save: Callable[[str], None]) -> None:
    """save(tmp) into a temporary file beside path, then rename: a crash never leaves half a file.

    The temporary name keeps path's suffixes, because Keras checks them (".weights.h5", ".keras").
    """
    tmp = path.with_name(f".tmp-{path.name}")
    save(str(tmp))
    os.replace(tmp, path)


def load_weights(model: keras.Model, path: Path) -> None:
    """Load HDF5 weights into model, with a one-line error for each way a file can be wrong."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    if not h5py.is_hdf5(path):
        raise UserError(f"{path} is not an HDF5 weights file")
    try:
        with h5py.File(path, "r"):
            pass
        model.load_weights(path)
    except (OSError, KeyError) as error:
        raise UserError(f"{path} is truncated or corrupt ({str(error).splitlines()[0]})") from None
    except ValueError as error:
        raise UserError(f"{path} does not fit this network: {_first_line(error)}") from None


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return " ".join(lines[:2])[:300] if lines else type(error).__name__


def resolve_weights(target: str, which: str = "best") -> tuple[Path, Config | None]:
    """A run folder (name or path) or a weights file -> (weights path, the run's config if any)."""
    path = Path(target)
    if path.suffix == ".h5" or path.is_file():
        if not path.exists():
            raise UserError(f"{path} does not exist")
        config_path = path.parent / "config.json"
        return path, Config.load(config_path) if config_path.exists() else None
    folder = run_folder(target)
    weights = folder / WEIGHTS[which]
    if not weights.exists():
        raise UserError(f"run folder {folder} has no {WEIGHTS[which]} (was it trained?)")
    config_path = folder / "config.json"
    return weights, Config.load(config_path) if config_path.exists() else None


def load_run(target: str, which: str = "best") -> tuple[keras.Model, Config, Path]:
    """Rebuild a run's network from its config.json (or the report's default) and load weights."""
    weights, config = resolve_weights(target, which)
    config = config or Config()
    model = build_from_config(config)
    load_weights(model, weights)
    return model, config, weights
