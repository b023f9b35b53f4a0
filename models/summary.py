"""The report's Task IV table: every layer's input and output shape and parameters, and the totals.

The totals are computed from the built model, never written down: parameters (trainable and not),
the split between the convolutional part (every layer before Flatten) and the fully connected part
(every layer after it), and the neuron counts: one neuron per output unit of a Dense layer and one
per output value of a Conv2D layer (a feature map holds one neuron per position, all sharing one
kernel), as the report counts them.
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
from keras import layers

from runs.files import atomic_write_text

PARAMETERS_FILE = "parameters.md"
HEADER = ("Layer (type)", "Input shape", "Output shape", "Params")


def summary_rows(model: keras.Model) -> list[dict]:
    """One row per layer, the input layer and the standardization layer included."""
    rows = []
    for layer in model.layers:
        output_shape = tuple(layer.output.shape)
        # An InputLayer has no input tensor of its own; the report shows its shape on both sides.
        input_shape = (output_shape if isinstance(layer, layers.InputLayer)
                       else tuple(layer.input.shape))
        rows.append({"layer": layer.name, "type": type(layer).__name__, "input_shape": input_shape,
                     "output_shape": output_shape, "params": layer.count_params()})
    return rows


def _parts(model: keras.Model) -> tuple[list, list]:
    """The layers before the first Flatten (convolutional part) and after it (fully connected
    part)."""
    flatten = next((i for i, layer in enumerate(model.layers) if isinstance(layer, layers.Flatten)),
                   len(model.layers))
    return model.layers[:flatten], model.layers[flatten + 1:]


def _conv_neurons(model: keras.Model) -> list[tuple[int, int, int]]:
    """(filters, height, width) of every Conv2D layer's output."""
    return [(layer.filters, *tuple(layer.output.shape)[1:3]) for layer in model.layers
            if isinstance(layer, layers.Conv2D)]


def _fc_neurons(model: keras.Model) -> list[int]:
    return [layer.units for layer in model.layers if isinstance(layer, layers.Dense)]


def summary_totals(model: keras.Model) -> dict:
    """Parameter totals, the conv/dense split and the neuron counts of the report's Task IV."""
    conv_part, dense_part = _parts(model)
    return {
        "total": model.count_params(),
        "trainable": sum(math.prod(v.shape) for v in model.trainable_weights),
        "non_trainable": sum(math.prod(v.shape) for v in model.non_trainable_weights),
        "conv": sum(layer.count_params() for layer in conv_part),
        "dense": sum(layer.count_params() for layer in dense_part),
        "conv_neurons": sum(math.prod(shape) for shape in _conv_neurons(model)),
        "fc_neurons": sum(_fc_neurons(model)),
    }


def _shape(shape: tuple) -> str:
    return f"({', '.join(str(d) for d in shape)})"


def _totals_lines(model: keras.Model) -> list[tuple[str, str]]:
    """(label, value) pairs shared by the text and Markdown forms; the value shows how it adds
    up."""
    totals = summary_totals(model)
    conv_part, dense_part = _parts(model)
    conv_names = ", ".join(layer.name for layer in conv_part if layer.count_params())
    dense_names = ", ".join(layer.name for layer in dense_part if layer.count_params())
    fc = _fc_neurons(model)
    conv = _conv_neurons(model)
    frozen = [layer for layer in model.layers if layer.non_trainable_weights]
    frozen_names = dict.fromkeys(v.name for layer in frozen for v in layer.non_trainable_weights)
    frozen_text = (f" ({', '.join(frozen_names)}"
                   f" of {', '.join(layer.name for layer in frozen)})") if frozen else ""
    return [
        ("Total params", f"{totals['total']:,}"),
        ("Trainable params", f"{totals['trainable']:,}"),
        ("Non-trainable params", f"{totals['non_trainable']:,}{frozen_text}"),
        ("Params in the convolutional layers", f"{totals['conv']:,} ({conv_names})"),
        ("Params in the fully connected layers", f"{totals['dense']:,} ({dense_names})"),
        ("Neurons in the fully connected layers",
         f"{' + '.join(map(str, fc))} = {totals['fc_neurons']:,}"),
        ("Neurons in the convolutional layers",
         f"{' + '.join('*'.join(map(str, s)) for s in conv)} = {totals['conv_neurons']:,}"),
    ]


def summary_text(model: keras.Model) -> str:
    """The table and totals as aligned plain text, for the terminal."""
    cells = [(f"{r['layer']} ({r['type']})", _shape(r["input_shape"]), _shape(r["output_shape"]),
              f"{r['params']:,}") for r in summary_rows(model)]
    widths = [max(len(row[i]) for row in [HEADER, *cells]) for i in range(4)]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join([*(c.ljust(w) for c, w in zip(row[:3], widths, strict=False)),
                          row[3].rjust(widths[3])])

    rule = "-" * len(line(HEADER))
    totals = _totals_lines(model)
    label_width = max(len(label) for label, _ in totals)
    return "\n".join([f"{model.name}: {len(cells)} layers", rule, line(HEADER), rule,
                      *map(line, cells), rule,
                      *(f"{label + ':':<{label_width + 1}} {value}"
                        for label, value in totals)]) + "\n"


def summary_markdown(model: keras.Model) -> str:
    """The same table and totals as Markdown, for the report."""
    lines = ["| Layer | Type | Input shape | Output shape | Params |", "|---|---|---|---|---:|"]
    lines += [f"| {r['layer']} | {r['type']} | {_shape(r['input_shape'])} "
              f"| {_shape(r['output_shape'])} | {r['params']:,} |" for r in summary_rows(model)]
    lines += ["", "| Quantity | Value |", "|---|---|"]
    lines += [f"| {label} | {value} |" for label, value in _totals_lines(model)]
    return "\n".join(lines) + "\n"


def write_summary(model: keras.Model, out: Path) -> Path:
    """Write the Markdown table to out/parameters.md (atomically) and return its path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / PARAMETERS_FILE
    atomic_write_text(path, summary_markdown(model))
    return path
