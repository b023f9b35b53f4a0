"""Run folders: rebuilding a run's exact network from its config.json and loading its weights."""

from __future__ import annotations

import os
import re
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
        with h5py.File(path, "r") as file:
            mismatch = layout_mismatch(model, file)
        if mismatch:
            raise UserError(f"{path} does not fit this network: {mismatch}")
        model.load_weights(path)
    except (OSError, KeyError) as error:
        raise UserError(f"{path} is truncated or corrupt ({str(error).splitlines()[0]})") from None
    except ValueError as error:
        raise UserError(f"{path} does not fit this network: {_first_line(error)}") from None


def weights_layout(model: keras.Model) -> dict[str, tuple[str, list[tuple[int, ...]]]]:
    """Where a .weights.h5 file keeps each layer's variables: group -> (layer name, variable shapes).

    Keras 3 names the groups by layer class and position (layers/conv2d_1/vars/0), not by layer
    name, and loads a file silently when the network merely lacks a layer the file holds (weights
    with the report's BN loaded into a network without it). Comparing layouts first catches that.
    """
    used: dict[str, int] = {}
    layout = {}
    for layer in model.layers:
        base = re.sub("([a-z])([A-Z])", r"\1_\2", re.sub("(.)([A-Z][a-z]+)", r"\1_\2", type(layer).__name__)).lower()
        used[base] = used[base] + 1 if base in used else 0  # as Keras' saving_lib numbers them
        shapes = [tuple(v.shape) for v in layer.trainable_weights + layer.non_trainable_weights]
        if shapes:
            layout[f"{base}_{used[base]}" if used[base] else base] = (layer.name, shapes)
    return layout


def file_layout(file: h5py.File) -> dict[str, list[tuple[int, ...]]]:
    """The variable shapes a .weights.h5 file holds, by layer group (groups without variables left out)."""
    layout = {}
    for group, layer in file.get("layers", {}).items():
        variables = layer.get("vars", {})
        shapes = [tuple(variables[str(i)].shape) for i in range(len(variables))]
        if shapes:
            layout[group] = shapes
    return layout


def layout_mismatch(model: keras.Model, file: h5py.File) -> str | None:
    """One line naming the first layer whose weights the file lacks or holds in another shape, or None."""
    if "layers" not in file:
        return None  # not a Keras 3 weights file: Keras reads legacy layouts itself and says what is wrong
    expected, found = weights_layout(model), file_layout(file)
    problems = [f"layer {name} has no weights in the file" if group not in found else
                f"layer {name} holds {_shapes(shapes)}, the file {_shapes(found[group])}"
                for group, (name, shapes) in expected.items() if found.get(group) != shapes]
    problems += [f"the file holds {_shapes(found[g])} for a layer the network lacks ({g})"
                 for g in found if g not in expected]
    if not problems:
        return None
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    kinds = sorted({_kind(group) for group in [*expected, *found]})
    counts = [f"{_count(found, k)} {k} layers, the network {_count(expected, k)}" for k in kinds
              if _count(found, k) != _count(expected, k)]
    counts_text = f"; the file has {', '.join(counts)}" if counts else ""
    return (f"{problems[0]}{more}{counts_text}. Weights of another network variant? Keep the run's "
            "config.json beside the weights file")


def _kind(group: str) -> str:
    return re.sub(r"_\d+$", "", group)


def _count(layout: dict, kind: str) -> int:
    return sum(_kind(group) == kind for group in layout)


def _shapes(shapes: list[tuple[int, ...]]) -> str:
    return " ".join(f"({', '.join(map(str, s))}{',' if len(s) == 1 else ''})" for s in shapes)


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
