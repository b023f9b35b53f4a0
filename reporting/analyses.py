"""Tasks VI and VII and the explanations: the analyses of the featured run's weights (the main
run's unless told otherwise), made by the analysis package, with captions that say what each
figure shows. Whatever cannot be made (no weights, no data, an analysis that fails) is listed as
missing, with the script command that would make it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from analysis import AnalysisError
from analysis.activation_max_figures import activation_max_figures
from analysis.choices import FILTER_IMAGES, SANITY_IMAGES
from analysis.filters import filter_figures
from analysis.gradcam_figures import gradcam_figures
from analysis.guided_figures import guided_figures
from analysis.inputs import RunImages
from analysis.neuron_figures import neuron_figures
from analysis.sanity_figures import sanity_figures
from data import DataError
from models.config import ConfigError
from reporting.explanations import (
    actmax_details,
    gradcam_details,
    sanity_numbers,
    sanity_reading,
    sanity_record,
    sanity_table,
)
from reporting.pages import Block, Figure, Missing, Section, Text
from reporting.run_records import RunRecord
from runs import WEIGHTS, RunError

# Errors that say in one line what is wrong; any other is a bug, quoted with its type.
EXPLAINED = (AnalysisError, ConfigError, DataError, RunError)


def sanity_tables(paths: list[Path]) -> tuple[list[Block], dict]:
    """The check's table of rank correlations (methods x stages), and its numbers for
    report.json."""
    record = next((json.loads(p.read_text()) for p in paths
                   if p.suffix == ".json" and p.stem.startswith("sanity_")), None)
    if record is None:
        return [], {}
    return [sanity_table(record)], {"sanity_rank_correlation": sanity_numbers(record)}


@dataclass(frozen=True)
class Analysis:
    title: str
    make: Callable[[RunImages, Path], list[Path]]  # make(run_images, out) -> the paths written
    script: str  # the command-line script (and method) that makes the same figures
    folder: str  # the figures' folder under figures/, and the analysis's name in messages
    needs_data: bool
    # Tables built from the files written (after the figures), and numbers for report.json.
    tables: Callable[[list[Path]], tuple[list[Block], dict]] | None = None
    images: int | None = None  # the first images of the test split it reads (None: all), as
    # its script's default


ANALYSES = (
    Analysis("Task VI: the CONV1 filters", filter_figures, "visualize_filters.py",
             "visualize_filters", needs_data=False, images=FILTER_IMAGES),
    Analysis("Task VII: interesting neurons", neuron_figures, "neurons.py", "neurons",
             needs_data=True),
    Analysis("Task VII: guided backpropagation", guided_figures, "guided_backprop.py",
             "guided_backprop", needs_data=True),
    Analysis("Explanations: Grad-CAM and Guided Grad-CAM", gradcam_figures,
             "explain.py gradcam", "gradcam", needs_data=True),
    Analysis("Explanations: what a unit wants (activation maximization)",
             activation_max_figures, "explain.py activation-max", "activation_max",
             needs_data=True),
    Analysis("Explanations: the sanity check (cascading randomization)", sanity_figures,
             "explain.py sanity", "sanity", needs_data=True, tables=sanity_tables,
             images=SANITY_IMAGES),
)


def analysis_section(analysis: Analysis, featured: RunRecord, figures: Path, *,
                     data_dir: str | None, skip: bool,
                     log: Callable[[str], None] | None = None) -> Section:
    """The analysis's figures of the featured run's best weights, into figures/FOLDER/; log,
    where given, takes a warning line if the analysis fails."""
    title = analysis.title
    command = f"python {analysis.script} --run {featured.arg}"
    if analysis.needs_data:
        command += f" --data-dir {data_dir or 'DATA'}"
    if skip:
        return Section(title, [Missing(title, "skipped (--no-analyses)", command)])
    if not (featured.folder / WEIGHTS["best"]).exists():
        return Section(title, [Missing(title, f"{featured.folder} has no {WEIGHTS['best']}",
                                       command)])
    if analysis.needs_data and not data_dir:
        return Section(title, [Missing(title, "no CIFAR-10 copy: pass --data-dir", command)])
    name = f"{analysis.make.__module__}.{analysis.make.__name__}"
    run_images = RunImages(featured.folder, data_dir=data_dir, images=analysis.images)
    try:
        paths = [Path(p) for p in analysis.make(run_images, figures / analysis.folder)]
    except Exception as error:  # one broken analysis must not cost the rest of the report
        reason = str(error) if isinstance(error, EXPLAINED) else f"{type(error).__name__}: {error}"
        if log:
            log(f"warning: {name} failed: {reason}")
        return Section(title, [Missing(title, f"{analysis.folder} failed: {reason}", command)])
    images = [p for p in paths if p.suffix == ".png"]
    others = [p.name for p in paths if p.suffix != ".png"]
    blocks: list[Block] = [
        Figure(p, f"{analysis_caption(p)} Made from {featured.name}'s best weights "
                  f"({featured.arg}), as `{command}` would.") for p in images]
    tables, numbers = analysis.tables(paths) if analysis.tables else ([], {})
    blocks += tables
    if others:
        blocks.append(Text(f"Also written beside the figures (figures/{analysis.folder}/): "
                           f"{', '.join(others)}."))
    return Section(title, blocks, numbers)


# What each analysis figure shows, by its file name (the figures carry their own numbers too).
ANALYSIS_CAPTIONS = (
    (r"filters_(\w+)_raw", "The {0} filters on one common scale (zero is grey), so their "
                           "relative strength shows; under each, its mean activation on test "
                           "images."),
    (r"filters_(\w+)_normalized", "The {0} filters, each stretched to its own range, so weak "
                                  "filters show their pattern too."),
    (r"neurons_(\w+)_classes", "The report's 10x10 grid: a row per CIFAR-10 class, the top "
                               "patches of the {0} neuron most selective for that class."),
    (r"neurons_(\w+)", "Interesting {0} neurons, a row each, chosen by the class purity of their "
                       "9 most exciting test images; each patch is the maximal unit's receptive "
                       "field (grey beyond the image), labelled with class and activation."),
    (r"compare_(\w+)", "Guided backpropagation beside plain saliency and deconvnet for the same "
                       "{0} units."),
    (r"gradcam_(\w+)", "Class-level maps: Grad-CAM (Selvaraju et al., ICCV 2017) and Guided "
                       "Grad-CAM at {0}. A row per image: the image (true class above; the "
                       "predicted class and its probability under it, red for a mistake); the "
                       "Grad-CAM map of the class it explains over it, red where {0}'s features "
                       "raise that class's score before the softmax most (the ReLU of the "
                       "feature maps weighted by the score's mean gradient, upsampled from {0}'s "
                       "resolution and scaled to the map's own maximum, whose value is under "
                       "it); and Guided Grad-CAM, guided backpropagation times that map: the "
                       "pixels that matter for that class, at full resolution."),
    (r"actmax_(\w+)", "What each {0} channel wants: activation maximization (Erhan et al. 2009; "
                      "Olah et al., Distill 2017). A row per channel (the interesting ones of "
                      "Task VII): first the input synthesized from noise by gradient ascent to "
                      "excite the channel most (under it the channel's mean / largest "
                      "activation in it), then the receptive-field patches of its top real "
                      "test images (class and activation under each), for comparison."),
    (r"sanity_(\w+)_curve", "The sanity check as curves: each method's mean rank correlation "
                            "with its own trained maps (Grad-CAM at {0}) against the stage, "
                            "from trained (1.0) to every layer random, with a band of one "
                            "standard deviation over the images; the numbers are in the table "
                            "below."),
    (r"sanity_(\w+)", "The cascading randomization check (Adebayo et al., NeurIPS 2018). A row "
                      "per method: its map of one test image, explaining the predicted class's "
                      "score before the softmax (Grad-CAM at {0}), first with the trained "
                      "weights, then with the layers re-initialized from the top, one more per "
                      "column (cumulatively, down to the first conv layer); under each map, the "
                      "method's mean Spearman rank correlation of map magnitudes with its "
                      "trained maps. A map that hardly changes when the weights are random "
                      "cannot be showing what the network learned."),
    (r"(\w+)_(\w+)_top\d+", "Each {1} neuron's top patches above their {0} maps."),
    (r"(\w+)_(\w+)", "{0} maps of each {1} neuron's maximal unit on its most exciting image: the "
                     "image with the unit's field outlined, the map, the field, and the map "
                     "inside the field."),
    (r"(.*)", "{0}."),  # any other figure: its name
)

METHOD_NAMES = {"guided": "guided-backpropagation", "saliency": "saliency (plain gradient)"}


def neurons_details(figure: Path) -> str:
    """The neurons picked and why, from the JSON table written beside the figure."""
    table = figure.with_suffix(".json")
    if not table.exists():
        return ""
    picked = json.loads(table.read_text()).get("selected", [])
    return "Picked: " + "; ".join(f"#{n['channel']}: {n['reason']}" for n in picked) + "."


def sanity_details(figure: Path) -> str:
    record = sanity_record(figure)
    return "" if record is None or figure.stem.endswith("_curve") else sanity_reading(record)


# The numbers a caption quotes from the files written beside its figure, by the figure's name.
DETAILS = ((r"neurons_\w+", neurons_details), (r"gradcam_\w+", gradcam_details),
           (r"actmax_\w+", actmax_details), (r"sanity_\w+", sanity_details))


def analysis_caption(path: Path) -> str:
    """What a figure of an analysis shows, and the numbers behind it where they are written
    beside it: the neurons picked and why, the images a Grad-CAM figure explains, each
    synthesized image's activation, the sanity check's numbers and what they mean."""
    text, match = next((t, m) for pattern, t in ANALYSIS_CAPTIONS
                       if (m := re.fullmatch(pattern, path.stem)))
    text = text.format(*(METHOD_NAMES.get(group, group) for group in match.groups()))
    details = next((d(path) for pattern, d in DETAILS if re.fullmatch(pattern, path.stem)), "")
    if details:
        text += " " + details
    return text[0].upper() + text[1:]
