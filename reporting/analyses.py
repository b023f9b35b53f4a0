"""Tasks VI and VII: the analyses of the main run's weights, made by the analysis package, with
captions that say what each figure shows. Whatever cannot be made (no weights, no data, an
analysis that fails) is listed as missing, with the script command that would make it."""

from __future__ import annotations

import importlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from analysis import AnalysisError
from data import DataError
from models.config import ConfigError
from reporting.pages import Figure, Missing, Section, Text
from reporting.runs import Run
from runs import WEIGHTS, RunError

# Errors that say in one line what is wrong; any other is a bug, quoted with its type.
EXPLAINED = (AnalysisError, ConfigError, DataError, RunError)


@dataclass(frozen=True)
class Analysis:
    title: str
    module: str  # in the analysis package
    function: str  # function(run_folder, out, data_dir=...) -> the paths written
    script: str  # the root script that makes the same figures; also the figures' folder name
    needs_data: bool


ANALYSES = (
    Analysis("Task VI: the CONV1 filters", "analysis.filters", "filter_figures",
             "visualize_filters", needs_data=False),
    Analysis("Task VII: interesting neurons", "analysis.neurons", "neuron_figures", "neurons",
             needs_data=True),
    Analysis("Task VII: guided backpropagation", "analysis.guided_figures", "guided_figures",
             "guided_backprop", needs_data=True),
)


def analysis_section(analysis: Analysis, main: Run, figures: Path, *, data_dir: str | None,
                     skip: bool) -> Section:
    """The analysis's figures of the main run's best weights, into figures/SCRIPT/."""
    title = analysis.title
    command = f"python {analysis.script}.py --run {main.arg}"
    if analysis.needs_data:
        command += f" --data-dir {data_dir or 'DATA'}"
    if skip:
        return Section(title, [Missing(title, "skipped (--no-analyses)", command)])
    if not (main.folder / WEIGHTS["best"]).exists():
        return Section(title, [Missing(title, f"{main.folder} has no {WEIGHTS['best']}", command)])
    if analysis.needs_data and not data_dir:
        return Section(title, [Missing(title, "no CIFAR-10 copy: pass --data-dir", command)])
    name = f"{analysis.module}.{analysis.function}"
    try:
        make_figures = getattr(importlib.import_module(analysis.module), analysis.function)
    except (ImportError, AttributeError) as error:
        return Section(title, [Missing(title, f"{name} is not available ({error})", command)])
    try:
        paths = make_figures(main.folder, figures / analysis.script, data_dir=data_dir)
    except Exception as error:  # one broken analysis must not cost the rest of the report
        reason = str(error) if isinstance(error, EXPLAINED) else f"{type(error).__name__}: {error}"
        print(f"warning: {name} failed: {reason}", file=sys.stderr)
        return Section(title, [Missing(title, f"{analysis.script} failed: {reason}", command)])
    images = [Path(p) for p in paths if Path(p).suffix == ".png"]
    others = [Path(p).name for p in paths if Path(p).suffix != ".png"]
    blocks: list = [Figure(p, f"{analysis_caption(p)} Made from {main.name}'s best weights, as "
                              f"`{command}` would.") for p in images]
    if others:
        blocks.append(Text(f"Also written beside the figures (figures/{analysis.script}/): "
                           f"{', '.join(others)}."))
    return Section(title, blocks)


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
    (r"(\w+)_(\w+)_top\d+", "Each {1} neuron's top patches above their {0} maps."),
    (r"(\w+)_(\w+)", "{0} maps of each {1} neuron's maximal unit on its most exciting image: the "
                     "image with the unit's field outlined, the map, the field, and the map "
                     "inside the field."),
    (r"(.*)", "{0}."),  # any other figure: its name
)

METHOD_NAMES = {"guided": "guided-backpropagation", "saliency": "saliency (plain gradient)"}


def analysis_caption(path: Path) -> str:
    """What a figure of an analysis shows, and for neurons the neurons it picked and why (from
    the JSON table written beside it)."""
    text, match = next((t, m) for pattern, t in ANALYSIS_CAPTIONS
                       if (m := re.fullmatch(pattern, path.stem)))
    text = text.format(*(METHOD_NAMES.get(group, group) for group in match.groups()))
    table = path.with_suffix(".json")
    if path.stem.startswith("neurons_") and table.exists():
        picked = json.loads(table.read_text()).get("selected", [])
        text += " Picked: " + "; ".join(f"#{n['channel']}: {n['reason']}" for n in picked) + "."
    return text[0].upper() + text[1:]
