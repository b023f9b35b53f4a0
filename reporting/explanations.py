"""The explanations' numbers as the report quotes them, read from the files the analyses write
beside their figures: the per-class sample of a Grad-CAM figure (gradcam_L_maps.npz), each
activation-maximization channel against its real top images (actmax_L.json), and the cascading
randomization check (sanity_L.json): its table, and what it means for reading the
guided-backpropagation maps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from data import CLASS_NAMES
from reporting.pages import Table

METHODS = {"saliency": "saliency", "guided": "guided backpropagation", "deconvnet": "deconvnet",
           "gradcam": "Grad-CAM", "guided-gradcam": "Guided Grad-CAM"}
# Half way between a map identical to its trained self (1) and an unrelated one (0): a map that
# stays above it while the weights that decide the class are random is more like the trained map
# than not, so it shows little of what those weights learned.
HIGH = 0.5
# Compared with guided backpropagation: the two methods Adebayo et al. found to depend on the
# weights (the plain gradient and Grad-CAM).
DEPENDENT = ("saliency", "gradcam")


def _value(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def gradcam_details(figure: Path) -> str:
    """Which images the rows are, what each map explains, and the mistakes shown, from the maps
    saved beside the figure; "" without them."""
    path = figure.with_name(f"{figure.stem}_maps.npz")
    if not path.exists():
        return ""
    with np.load(path) as maps:
        kinds, labels = [str(k) for k in maps["kinds"]], maps["labels"]
        predicted, probabilities = maps["predictions"], maps["probabilities"]
        target, split = str(maps["target"]), str(maps["split"])
    mistakes = [i for i, kind in enumerate(kinds) if kind == "mistake"]
    if set(kinds) <= {"correct", "mistake"}:
        text = (f"The {len(kinds)} rows: for each class, its most confident correct {split} "
                f"image and its most confident mistake ({len(kinds) - len(mistakes)} correct, "
                f"{len(mistakes)} mistakes).")
    else:
        text = f"The {len(kinds)} rows: {split} images {', '.join(sorted(set(kinds)))}."
    text += {"predicted": " Each map explains the predicted class, so a mistake's map shows "
                          "what made the network see the wrong class.",
             "true": " Each map explains the true class."}.get(target, f" Each map explains "
                                                                      f"class {target}.")
    if mistakes:
        text += " Mistakes: " + "; ".join(
            f"{CLASS_NAMES[labels[i]]} taken for {CLASS_NAMES[predicted[i]]} "
            f"({probabilities[i, predicted[i]]:.2f})" for i in mistakes) + "."
    return text


def actmax_details(figure: Path) -> str:
    """The settings of the ascent and, per channel, its largest activation in the synthesized
    image against its best real image, from the JSON beside the figure; "" without it."""
    path = figure.with_suffix(".json")
    if not path.exists():
        return ""
    record = json.loads(path.read_text())
    channels = record["channels"]
    stronger = sum(c["synthesized_max"] > max(c["top_activations"]) for c in channels)
    return (f"{record['steps']} steps of gradient ascent on the channel's {record['objective']} "
            f"activation, jitter {record['jitter']} px, seed {record['seed']}; the synthesized "
            f"input excites {stronger} of the {len(channels)} channels more than any of their "
            f"top real images. Largest activation, synthesized / best real image: "
            + "; ".join(f"#{c['channel']} ({c['dominant']}) {c['synthesized_max']:.1f} / "
                        f"{max(c['top_activations']):.1f}" for c in channels) + ".")


def sanity_record(figure: Path) -> dict | None:
    """The check's numbers for either of its figures (sanity_L.png, sanity_L_curve.png)."""
    path = figure.with_name(f"{figure.stem.removesuffix('_curve')}.json")
    return json.loads(path.read_text()) if path.exists() else None


def sanity_numbers(record: dict) -> dict[str, dict[str, float | None]]:
    """Per method, its mean rank correlation with the trained maps at each stage."""
    return {method: dict(zip(numbers["stages"], numbers["rank_correlation"], strict=True))
            for method, numbers in record["methods"].items()}


def sanity_table(record: dict) -> Table:
    """Methods x stages: the mean rank correlation with the trained maps ("n/a" where every
    map was constant)."""
    stages = record["stages"]
    return Table(["rank correlation with the trained maps", *stages],
                 [[METHODS.get(method, method), *(_value(numbers[stage]) for stage in stages)]
                  for method, numbers in sanity_numbers(record).items()])


def _top_stage(record: dict) -> int | None:
    """The stage where every layer above Grad-CAM's is random (in the report's network, the
    fully connected layers that decide the class), if there is one."""
    stages = record["stages"]
    index = stages.index(record["layer"]) - 1 if record["layer"] in stages else 0
    return index if index >= 1 else None


def sanity_reading(record: dict) -> str:
    """The numbers at the stage where the layers that decide the class are random and at the
    last stage, and what they mean for reading the guided-backpropagation maps."""
    stages, numbers, images = record["stages"], sanity_numbers(record), record["images"]
    top, last = _top_stage(record), len(stages) - 1

    def listing(stage: int) -> str:
        return ", ".join(f"{METHODS.get(method, method)} {_value(values[stages[stage]])}"
                         for method, values in numbers.items())

    text = ""
    if top is not None:
        text += (f"With the layers above {record['layer']} re-initialized "
                 f"({', '.join(stages[1:top + 1])}), the mean rank correlation with the trained "
                 f"maps over {images} images is: {listing(top)}. ")
    text += f"With every layer re-initialized (down to {stages[-1]}): {listing(last)}."
    stage = last if top is None else top
    guided = numbers.get("guided", {}).get(stages[stage])
    if guided is None:
        return text
    random = ("with every layer random" if top is None
              else "when the layers that decide the class are random")
    fell = [(METHODS[m], numbers[m][stages[stage]]) for m in DEPENDENT
            if numbers.get(m, {}).get(stages[stage]) is not None
            and numbers[m][stages[stage]] < HIGH]
    if guided >= HIGH:
        text += (f" Guided backpropagation's maps stay close to the trained ones ({guided:.2f}) "
                 f"{random}, so they show the image's edges more than what the classifier "
                 f"learned: read them as where the image has structure the lower layers "
                 f"respond to, not as why the network chose the class.")
    else:
        text += (f" Guided backpropagation's maps change ({guided:.2f}) {random}, so here they "
                 f"do depend on what the network learned.")
    if fell:
        owners = _and([name + "'s" for name, _ in fell])
        values = ", ".join(f"{value:.2f}" for _, value in fell)
        text += f" {owners[0].upper()}{owners[1:]} fall ({values}), so they depend on the training."
    return text
