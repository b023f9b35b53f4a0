"""A run's network with its weights: rebuilt from config.json, the file checked before loading."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import h5py
import keras

from models.config import Config
from models.network import build_from_config
from runs.folder import WEIGHTS, RunError, find_run, read_config


def load_weights(model: keras.Model, path: Path) -> None:
    """Load HDF5 weights into model, with a one-line error for each way a file can be wrong."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"{path} does not exist")
    if not h5py.is_hdf5(path):
        raise RunError(f"{path} is not an HDF5 weights file")
    try:
        with h5py.File(path, "r") as file:
            mismatch = layout_mismatch(model, file)
        if mismatch:
            raise RunError(f"{path} does not fit this network: {mismatch}")
        model.load_weights(path)
    except RunError:  # a ValueError too, already worded
        raise
    except (OSError, KeyError) as error:
        raise RunError(f"{path} is truncated or corrupt ({str(error).splitlines()[0]})") from None
    except ValueError as error:
        raise RunError(f"{path} does not fit this network: {_first_line(error)}") from None


def weights_layout(model: keras.Model) -> dict[str, tuple[str, list[tuple[int, ...]]]]:
    """Where a .weights.h5 file keeps each layer's variables: group -> (layer name, variable
    shapes).

    Keras 3 names the groups by layer class and position (layers/conv2d_1/vars/0), not by layer
    name, and loads a file silently when the network merely lacks a layer the file holds (weights
    with the report's BN loaded into a network without it). Comparing layouts first catches that.
    """
    used: dict[str, int] = {}
    layout = {}
    for layer in model.layers:
        base = re.sub("([a-z])([A-Z])", r"\1_\2",
                      re.sub("(.)([A-Z][a-z]+)", r"\1_\2", type(layer).__name__)).lower()
        used[base] = used[base] + 1 if base in used else 0  # as Keras' saving_lib numbers them
        shapes = [tuple(v.shape) for v in layer.trainable_weights + layer.non_trainable_weights]
        if shapes:
            layout[f"{base}_{used[base]}" if used[base] else base] = (layer.name, shapes)
    return layout


def file_layout(file: h5py.File) -> dict[str, list[tuple[int, ...]]]:
    """The variable shapes a .weights.h5 file holds, by layer group (groups without variables
    left out)."""
    layout = {}
    for group, layer in file.get("layers", {}).items():
        variables = layer.get("vars", {})
        shapes = [tuple(variables[str(i)].shape) for i in range(len(variables))]
        if shapes:
            layout[group] = shapes
    return layout


def layout_mismatch(model: keras.Model, file: h5py.File) -> str | None:
    """One line naming the first layer whose weights the file lacks or holds in another shape, or
    None."""
    if "layers" not in file:
        # not a Keras 3 weights file: Keras reads legacy layouts itself and says what is wrong
        return None
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


def resolve_weights(target: str | Path, which: str = "best") -> tuple[Path, Config | None]:
    """A run folder (name or path) or a weights file -> (weights path, the run's config if any)."""
    path = Path(target)
    if path.suffix == ".h5" or path.is_file():
        if not path.exists():
            raise RunError(f"{path} does not exist")
        return path, read_config(path.parent)
    folder = find_run(target)
    weights = folder / WEIGHTS[which]
    if not weights.exists():
        raise RunError(f"run folder {folder} has no {WEIGHTS[which]} (was it trained?)")
    return weights, read_config(folder)


@contextlib.contextmanager
def dtype_policy(policy: str) -> Iterator[None]:
    """Build layers under a dtype policy, and put the caller's policy back after."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def load_network(target: str | Path, which: str = "best",
                 policy: str = "float32") -> tuple[keras.Model, Config, Path]:
    """The run's network variant built under `policy` with its weights loaded; the report's
    network where there is no config.json. Returns (model, config, weights path)."""
    weights, config = resolve_weights(target, which)
    config = config or Config()
    with dtype_policy(policy):
        model = build_from_config(config)
    load_weights(model, weights)
    return model, config, weights
