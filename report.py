"""Rebuild the report's figures and pages from run folders alone.

    python report.py logs/report logs/bn-dropout/* logs/optimizers/* --data-dir ../shared/data/cifar-10-jpeg

The first RUN is the main run: its learning curves (Task I), its best-on-validation test accuracy
and settings (Tasks II/III), its network's parameter table (Task IV) and the analyses of its
weights (Task VI filters, Task VII neurons and guided backpropagation). The other runs are
recognised from their config.json: runs that differ only in batch norm and dropout make the Task V
figures (legends as the report's: BN, BN without dropouts, NO BN, NO BN without dropouts), runs that
differ only in the optimizer make the optimizer figures. study.py trains both sets.

OUT (default: MAIN_RUN/report) gets report.html (self-contained, figures embedded), report.md
(relative image links), figures/ (PNG, and PDF for the plots) and report.json (every number in the
tables). Whatever cannot be made (no weights, no data, an analysis script not available) is listed
as missing with the command that would make it. Rebuilding gives the same pages and plot files.
"""

from __future__ import annotations

import models  # noqa: F401 - first, so that TensorFlow starts quietly

# isort: split
import argparse
import base64
import csv
import html
import importlib
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from data import CLASS_NAMES, DataError
from models.cli import UserError, main_with_errors, run_folder
from models.config import Config

SPLITS = {"train": "train", "val": "validation", "test": "test"}
# Fixed metadata: no dates or versions in the files, so a rebuild writes identical bytes.
PNG_METADATA = {"Software": None}
PDF_METADATA = {"CreationDate": None, "Producer": None, "Creator": None}
# Settings that do not change what a run learns; runs differing only in these still compare.
NOT_COMPARED = {"data_dir", "runtime", "preset", "precision", "xla", "strategy"}


# ---------------------------------------------------------------------------------------------
# Runs and their numbers


@dataclass
class Run:
    """A run folder as the report sees it: config.json, history.csv and evaluate.py's JSON."""

    arg: str
    folder: Path
    config: dict
    history: dict[str, list[float]]
    evaluation: dict | None = None
    evaluation_missing: str = "no eval/best-test.json, and no --data-dir to run evaluate.py with"

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def best(self) -> int:
        """Index of the best validation accuracy; the first one on ties, as train.py keeps it."""
        values = self.history["val_accuracy"]
        return values.index(max(values))


def read_history(path: Path) -> dict[str, list[float]]:
    with path.open() as f:
        rows = list(csv.DictReader(f))
    return {key: [float(row[key]) for row in rows] for key in (rows[0] if rows else {})}


def load_run(arg: str) -> Run:
    folder = run_folder(arg)
    config_path, history_path = folder / "config.json", folder / "history.csv"
    if not config_path.exists() and not history_path.exists():
        raise UserError(f"{folder} is not a run folder: it has neither config.json nor history.csv")
    config = json.loads(config_path.read_text()) if config_path.exists() else {}
    history = read_history(history_path) if history_path.exists() else {}
    eval_path = folder / "eval" / "best-test.json"
    evaluation = json.loads(eval_path.read_text()) if eval_path.exists() else None
    return Run(arg, folder, config, history, evaluation)


def percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def loss(value: float) -> str:
    return f"{value:.4f}"


def run_numbers(run: Run) -> dict:
    """The numbers the tables and captions quote, straight from history.csv (and evaluate.py)."""
    h, b = run.history, run.best
    numbers = {"run": run.name, "folder": run.arg, "epochs": len(h["epoch"]), "best_epoch": int(h["epoch"][b]),
               "best_val_accuracy": h["val_accuracy"][b], "val_loss_at_best": h["val_loss"][b],
               "test_accuracy_at_best": h["test_accuracy"][b], "test_loss_at_best": h["test_loss"][b],
               "train_loss_at_best": h["train_loss"][b], "last_train_loss": h["train_loss"][-1],
               "last_train_accuracy": h["train_accuracy"][-1], "minutes": sum(h["seconds"]) / 60}
    if run.evaluation:
        numbers["evaluate_test_accuracy"] = run.evaluation["accuracy"]
        numbers["evaluate_test_loss"] = run.evaluation["loss"]
    return numbers


# ---------------------------------------------------------------------------------------------
# Which run is which: the report's names for the study configurations


def bn_label(config: dict) -> str:
    """The report's Task V legend: BN, BN without dropouts, NO BN, NO BN without dropouts."""
    name = {"output": "BN", "all": "BN everywhere", "none": "NO BN"}[config.get("batchnorm", "output")]
    conv, fc = config.get("conv_dropout", 0.5), config.get("fc_dropout", 0.5)
    if conv == 0 and fc == 0:
        return f"{name} without dropouts"
    return name if conv == fc == 0.5 else f"{name} (dropout {conv:g} conv, {fc:g} FC)"


def optimizer_label(config: dict) -> str:
    optimizer = config.get("optimizer", "adam")
    name = {"adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop"}.get(optimizer, optimizer)
    if optimizer == "sgd":
        name = f"SGD + momentum {config.get('momentum', 0.9):g}"
    return f"{name} (lr {config.get('learning_rate', 1e-3):g})"


@dataclass
class Study:
    """Runs compared in one set of figures: they differ only in the fields `varies`."""

    key: str
    title: str
    varies: tuple[str, ...]
    label: Callable[[dict], str]
    order: tuple[str, ...]  # legend order; labels not listed follow
    complete: int  # the first `complete` labels of `order` are the study as the report ran it
    how: str  # the study.py command that trains it


STUDIES = (
    Study("bn-dropout", "Task V: batch normalization and dropout", ("batchnorm", "conv_dropout", "fc_dropout"),
          bn_label, ("BN", "BN without dropouts", "NO BN", "NO BN without dropouts", "BN everywhere",
                     "BN everywhere without dropouts"), 4, "python study.py bn-dropout"),
    Study("optimizers", "Miscellaneous: optimizers", ("optimizer", "learning_rate", "momentum"), optimizer_label,
          ("Adam (lr 0.001)", "SGD + momentum 0.9 (lr 0.01)", "RMSprop (lr 0.001)"), 3, "python study.py optimizers"),
)


def study_runs(study: Study, runs: list[Run]) -> list[tuple[str, Run]]:
    """The largest set of runs whose configs differ only in study.varies, one per label, in legend order."""
    groups: dict[str, dict[str, Run]] = {}
    for run in runs:
        if not run.config:
            continue
        rest = {k: v for k, v in run.config.items() if k not in NOT_COMPARED and k not in study.varies}
        group = groups.setdefault(json.dumps(rest, sort_keys=True), {})
        group.setdefault(study.label(run.config), run)  # the first run given wins a duplicate label
    largest = max(groups.values(), key=len, default={})
    if len(largest) < 2:
        return []
    rank = {label: i for i, label in enumerate(study.order)}
    return sorted(largest.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))


# ---------------------------------------------------------------------------------------------
# Page blocks, rendered to Markdown and to HTML


@dataclass
class Figure:
    path: Path
    caption: str
    pdf: Path | None = None


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Text:
    text: str


@dataclass
class Missing:
    what: str
    reason: str
    command: str


@dataclass
class Section:
    title: str
    blocks: list = field(default_factory=list)


def to_markdown(title: str, sections: list[Section], out: Path) -> str:
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            lines += [*markdown_block(block, out), ""]
    return "\n".join(lines)


def markdown_block(block, out: Path) -> list[str]:
    if isinstance(block, Figure):
        link = block.path.relative_to(out).as_posix()
        pdf = f" ([PDF]({block.pdf.relative_to(out).as_posix()}))" if block.pdf else ""
        return [f"![{block.path.stem}]({link})", "", f"*{block.caption}*{pdf}"]
    if isinstance(block, Table):
        rows = [block.header, ["---"] * len(block.header), *block.rows]
        return ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    if isinstance(block, Missing):
        return [f"**Missing: {block.what}** ({block.reason}). To make it: `{block.command}`"]
    return [block.text]


def to_html(title: str, sections: list[Section]) -> str:
    style = ("body{font-family:sans-serif;max-width:1000px;margin:auto;padding:1em;line-height:1.4}"
             "img{max-width:100%}table{border-collapse:collapse;margin:.5em 0}"
             "td,th{border:1px solid #bbb;padding:.2em .5em;text-align:left}"
             "figcaption{font-style:italic;margin-bottom:1.5em}.missing{color:#a00}code{background:#eee}")
    parts = [f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{style}</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [html_block(block) for block in section.blocks]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def html_block(block) -> str:
    if isinstance(block, Figure):
        data = base64.b64encode(block.path.read_bytes()).decode("ascii")
        return (f"<figure><img alt='{html.escape(block.path.stem)}' src='data:image/png;base64,{data}'>"
                f"<figcaption>{html.escape(block.caption)}</figcaption></figure>")
    if isinstance(block, Table):
        head = "".join(f"<th>{html.escape(cell)}</th>" for cell in block.header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
                       for row in block.rows)
        return f"<table><tr>{head}</tr>{body}</table>"
    if isinstance(block, Missing):
        return (f"<p class='missing'><b>Missing: {html.escape(block.what)}</b> ({html.escape(block.reason)})."
                f" To make it: <code>{html.escape(block.command)}</code></p>")
    return f"<p>{html.escape(block.text)}</p>"


# ---------------------------------------------------------------------------------------------
# Plots


def save_plot(fig, figures: Path, stem: str, caption: str) -> Figure:
    """PNG and PDF, without dates or versions in them."""
    figures.mkdir(parents=True, exist_ok=True)
    png, pdf = figures / f"{stem}.png", figures / f"{stem}.pdf"
    fig.savefig(png, dpi=120, metadata=PNG_METADATA)
    fig.savefig(pdf, metadata=PDF_METADATA)
    plt.close(fig)
    return Figure(png, caption, pdf)


def plot_curves(run: Run, metric: str, figures: Path) -> Figure:
    """Task I: train, validation and test curves of one metric, the best validation epoch marked."""
    h, b = run.history, run.best
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    scale = 100 if metric == "accuracy" else 1
    for split, name in SPLITS.items():
        ax.plot(h["epoch"], [scale * v for v in h[f"{split}_{metric}"]], label=name, marker=".")
    ax.axvline(h["epoch"][b], color="grey", linestyle=":", label=f"best validation accuracy (epoch {h['epoch'][b]:g})")
    ax.plot(h["epoch"][b], scale * h[f"val_{metric}"][b], marker="*", markersize=14, color="C1")
    ax.set(xlabel="epoch", ylabel="accuracy (%)" if metric == "accuracy" else "negative log-likelihood",
           title=f"model {metric} ({run.name})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend()
    n = run_numbers(run)
    if metric == "loss":
        caption = (f"Negative log-likelihood per epoch of run {run.name} on train, validation and test. At the best "
                   f"validation epoch ({n['best_epoch']} of {n['epochs']}): train {loss(n['train_loss_at_best'])}, "
                   f"validation {loss(n['val_loss_at_best'])}, test {loss(n['test_loss_at_best'])}. The train loss "
                   f"is Keras' running mean over the epoch with dropout and augmentation on.")
    else:
        caption = (f"Accuracy per epoch of run {run.name}. Best validation accuracy "
                   f"{percent(n['best_val_accuracy'])} at epoch {n['best_epoch']}; test accuracy of those weights "
                   f"{percent(n['test_accuracy_at_best'])}; last train accuracy {percent(n['last_train_accuracy'])}.")
    return save_plot(fig, figures, f"task1-{metric}", caption)


STYLES = {"BN": ("C0", "-"), "BN without dropouts": ("C0", "--"), "NO BN": ("C3", "-"),
          "NO BN without dropouts": ("C3", "--"), "BN everywhere": ("C2", "-"),
          "BN everywhere without dropouts": ("C2", "--")}


def plot_study(study: Study, members: list[tuple[str, Run]], split: str, figures: Path) -> Figure:
    """One split of a study: loss and accuracy per epoch of every configuration, overlaid."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
    for i, (label, run) in enumerate(members):
        color, style = STYLES.get(label, (f"C{(i + 4) % 10}", "-"))
        left.plot(run.history["epoch"], run.history[f"{split}_loss"], color=color, linestyle=style, label=label)
        right.plot(run.history["epoch"], [100 * v for v in run.history[f"{split}_accuracy"]], color=color,
                   linestyle=style, label=label)
    left.set(xlabel="epoch", ylabel="negative log-likelihood", title=f"{SPLITS[split]} loss")
    right.set(xlabel="epoch", ylabel="accuracy (%)", title=f"{SPLITS[split]} accuracy")
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    right.legend()
    return save_plot(fig, figures, f"{study.key}-{split}", study_caption(study, members, split))


def study_caption(study: Study, members: list[tuple[str, Run]], split: str) -> str:
    what = f"{study.title.split(': ')[-1].capitalize()}: {SPLITS[split]} loss and accuracy per epoch. "
    if split == "train":
        return what + "Last epoch: " + "; ".join(
            f"{label} {loss(run.history['train_loss'][-1])} / {percent(run.history['train_accuracy'][-1])}"
            for label, run in members) + "."
    if split == "val":
        return what + "Best validation accuracy: " + "; ".join(
            f"{label} {percent(run.history['val_accuracy'][run.best])} (epoch {run.history['epoch'][run.best]:g})"
            for label, run in members) + "."
    return what + "Test accuracy at the best validation epoch: " + "; ".join(
        f"{label} {percent(run.history['test_accuracy'][run.best])}" for label, run in members) + "."


# ---------------------------------------------------------------------------------------------
# Sections


def runs_section(runs: list[Run], unfinished: list[Run]) -> Section:
    header = ["run", "configuration", "epochs", "best epoch", "best val accuracy", "test accuracy at best epoch",
              "evaluate.py test accuracy", "minutes"]
    rows = []
    for run in runs:
        n = run_numbers(run)
        evaluated = percent(n["evaluate_test_accuracy"]) if "evaluate_test_accuracy" in n else "-"
        rows.append([run.name, f"{bn_label(run.config)}, {optimizer_label(run.config)}", str(n["epochs"]),
                     str(n["best_epoch"]), percent(n["best_val_accuracy"]), percent(n["test_accuracy_at_best"]),
                     evaluated, f"{n['minutes']:.1f}"])
    text = Text(f"The main run is {runs[0].name} ({runs[0].arg}), the first one given. 'Test accuracy at best "
                f"epoch' is history.csv's test accuracy at the epoch of the best validation accuracy (the "
                f"best.weights.h5 weights); 'evaluate.py' is the same weights re-evaluated by evaluate.py.")
    # An unfinished run's own command (config.json records it) trains it afresh.
    missing = [Missing(f"run {run.name}", "no finished epoch in history.csv", "python " + run.config.get(
        "runtime", {}).get("command", f"train.py --run {run.name}")) for run in unfinished]
    return Section("Runs", [text, Table(header, rows), *missing])


def curves_section(main: Run, figures: Path) -> Section:
    return Section("Task I: learning curves", [plot_curves(main, "loss", figures),
                                               plot_curves(main, "accuracy", figures)])


def settings_rows(config: Config) -> list[list[str]]:
    augment = f"random shifts up to {config.translate} px, horizontal flips" if config.augment else "none"
    return [["patience parameter p", str(config.patience)], ["learning-rate decay", f"x{config.decay_factor:g}"
            f" on a validation-loss plateau" if config.schedule == "plateau" else config.schedule],
            ["dropout rate (conv / FC)", f"{config.conv_dropout:g} / {config.fc_dropout:g}"],
            ["batch size", str(config.batch_size)], ["initial learning rate", f"{config.learning_rate:g}"],
            ["optimizer", config.optimizer], ["initialization", "Xavier (Glorot uniform)"],
            ["batch normalization", config.batchnorm], ["data augmentation", augment],
            ["epochs", str(config.epochs)], ["seed", str(config.seed)], ["preset", config.preset]]


def best_section(main: Run) -> Section:
    n = run_numbers(main)
    rows = [["best validation accuracy", f"{percent(n['best_val_accuracy'])} (epoch {n['best_epoch']})"],
            ["test accuracy at that epoch (history.csv)", percent(n["test_accuracy_at_best"])]]
    blocks = []
    if main.evaluation:
        rows.append(["test accuracy of best.weights.h5 (evaluate.py)",
                     f"{percent(main.evaluation['accuracy'])} on {main.evaluation.get('n_images', '?')} images, "
                     f"loss {loss(main.evaluation['loss'])}"])
    else:
        blocks.append(Missing("evaluate.py's test accuracy of the best weights", main.evaluation_missing,
                              f"python evaluate.py {main.arg} --data-dir DATA"))
    config = Config(**{k: v for k, v in main.config.items() if k in Config.__dataclass_fields__})
    blocks = [Table(["Task II: best-on-validation weights", "value"], rows), *blocks,
              Table(["Task III: setting", "value"], settings_rows(config))]
    if main.evaluation and main.evaluation.get("per_class"):
        blocks.append(per_class_table(main.evaluation["per_class"]))
    return Section("Tasks II and III: test accuracy of the best-on-validation weights, and its settings", blocks)


def per_class_table(per_class) -> Table:
    items = per_class.items() if isinstance(per_class, dict) else zip(CLASS_NAMES, per_class, strict=True)
    return Table(["class", "test accuracy (evaluate.py)"], [[name, percent(value)] for name, value in items])


def summary_section(main: Run) -> Section:
    """Task IV: models.summary's table (layers, shapes, parameters, totals) of the main run's network."""
    try:
        from models.runs import build_from_config
        from models.summary import summary_markdown
    except ImportError as error:
        return Section("Task IV: the network", [Missing("the parameter table", str(error),
                                                        "python evaluate.py --summary")])
    config = Config(**{k: v for k, v in main.config.items() if k in Config.__dataclass_fields__})
    return Section("Task IV: the network", markdown_blocks(summary_markdown(build_from_config(config))))


def markdown_blocks(text: str) -> list:
    """A Markdown pipe table (and the lines around it) as page blocks, so the HTML page shows a table."""
    blocks, table = [], []
    for line in [*text.splitlines(), ""]:
        if line.strip().startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not all(set(cell) <= set("-: ") for cell in cells):
                table.append(cells)
            continue
        if table:
            blocks.append(Table(table[0], table[1:]))
            table = []
        if line.strip() and not line.startswith("#"):
            blocks.append(Text(line.strip()))
    return blocks


def study_section(study: Study, runs: list[Run], figures: Path) -> Section:
    members = study_runs(study, runs)
    if not members:
        reason = f"no two given runs differ only in {', '.join(study.varies)}; pass the study's run folders"
        return Section(study.title, [Missing(f"the {study.key} study", reason, f"{study.how} --data-dir DATA")])
    header = ["configuration", "run", "epochs", "best epoch", "best val accuracy", "test accuracy at best epoch",
              "lowest val loss", "last train loss", "last train accuracy"]
    rows = [[label, run.name, str(len(run.history["epoch"])), f"{run.history['epoch'][run.best]:g}",
             percent(run.history["val_accuracy"][run.best]), percent(run.history["test_accuracy"][run.best]),
             loss(min(run.history["val_loss"])), loss(run.history["train_loss"][-1]),
             percent(run.history["train_accuracy"][-1])] for label, run in members]
    absent = [label for label in study.order[:study.complete] if label not in dict(members)]
    blocks = [Missing(f"{', '.join(absent)} in the {study.key} study", "no such run given", f"{study.how} "
                      f"--data-dir DATA")] if absent else []
    return Section(study.title, [*blocks, Table(header, rows), *(plot_study(study, members, split, figures)
                                                                  for split in SPLITS)])


# ---------------------------------------------------------------------------------------------
# Analyses of the main run's weights (other scripts' make_figures, imported)

ANALYSES = (("visualize_filters", "Task VI: the CONV1 filters", False),
            ("neurons", "Task VII: interesting neurons", True),
            ("guided_backprop", "Task VII: guided backpropagation", True))


def analysis_section(module: str, title: str, needs_data: bool, main: Run, figures: Path,
                     data_dir: str | None, skip: bool) -> Section:
    command = f"python {module}.py --run {main.arg}" + (f" --data-dir {data_dir or 'DATA'}" if needs_data else "")
    if skip:
        return Section(title, [Missing(title, "skipped (--no-analyses)", command)])
    if not (main.folder / "best.weights.h5").exists():
        return Section(title, [Missing(title, f"{main.folder} has no best.weights.h5", command)])
    if needs_data and not data_dir:
        return Section(title, [Missing(title, "no CIFAR-10 copy: pass --data-dir", command)])
    try:
        make_figures = importlib.import_module(module).make_figures
    except (ImportError, AttributeError) as error:
        return Section(title, [Missing(title, f"{module}.make_figures is not available ({error})", command)])
    try:
        paths = make_figures(main.folder, figures / module, data_dir=data_dir)
    except Exception as error:  # one broken analysis must not cost the rest of the report; the page says why
        reason = str(error) if isinstance(error, UserError | DataError) else f"{type(error).__name__}: {error}"
        print(f"warning: {module}.make_figures failed: {reason}", file=sys.stderr)
        return Section(title, [Missing(title, f"{module} failed: {reason}", command)])
    images = [Path(p) for p in paths if Path(p).suffix == ".png"]
    others = [Path(p).name for p in paths if Path(p).suffix != ".png"]
    blocks = [Figure(p, f"{analysis_caption(p)} Made from {main.name}'s best weights, as `{command}` would.")
              for p in images]
    if others:
        blocks.append(Text(f"Also written beside the figures (figures/{module}/): {', '.join(others)}."))
    return Section(title, blocks)


# What each analysis figure shows, by its file name (the figures carry their own numbers too).
ANALYSIS_CAPTIONS = (
    (r"filters_(\w+)_raw", "The {0} filters on one common scale (zero is grey), so their relative strength "
                            "shows; under each, its mean activation on test images."),
    (r"filters_(\w+)_normalized", "The {0} filters, each stretched to its own range, so weak filters show "
                                   "their pattern too."),
    (r"neurons_(\w+)_classes", "The report's 10x10 grid: a row per CIFAR-10 class, the top patches of the {0} "
                                "neuron most selective for that class."),
    (r"neurons_(\w+)", "Interesting {0} neurons, a row each, chosen by the class purity of their 9 most "
                        "exciting test images; each patch is the maximal unit's receptive field (grey beyond "
                        "the image), labelled with class and activation."),
    (r"compare_(\w+)", "Guided backpropagation beside plain saliency and deconvnet for the same {0} units."),
    (r"(\w+)_(\w+)_top\d+", "Each {1} neuron's top patches above their {0} maps."),
    (r"(\w+)_(\w+)", "{0} maps of each {1} neuron's maximal unit on its most exciting image: the image with "
                       "the unit's field outlined, the map, the field, and the map inside the field."),
    (r"(.*)", "{0}."),  # any other figure: its name
)


METHOD_NAMES = {"guided": "guided-backpropagation", "saliency": "saliency (plain gradient)"}


def analysis_caption(path: Path) -> str:
    """What a figure of an analysis script shows, and for neurons the neurons it picked and why."""
    text, match = next((t, m) for pattern, t in ANALYSIS_CAPTIONS if (m := re.fullmatch(pattern, path.stem)))
    text = text.format(*(METHOD_NAMES.get(group, group) for group in match.groups()))
    table = path.with_suffix(".json")
    if path.stem.startswith("neurons_") and table.exists():
        picked = json.loads(table.read_text()).get("selected", [])
        text += " Picked: " + "; ".join(f"#{n['channel']}: {n['reason']}" for n in picked) + "."
    return text[0].upper() + text[1:]


# ---------------------------------------------------------------------------------------------
# The report


def resolve_data_dir(data_dir: str | None, main: Run) -> str | None:
    """--data-dir, else $CIFAR10_DIR, else the copy the main run trained on if it is still there."""
    trained_on = main.config.get("data_dir")
    return data_dir or os.environ.get("CIFAR10_DIR") or (trained_on if trained_on and Path(trained_on).exists()
                                                        else None)


def evaluate_main(main: Run, data_dir: str | None, batch_size: int) -> None:
    """evaluate.py's numbers for the main run when its JSON is absent but weights and data are there."""
    if main.evaluation or not data_dir:
        return
    if not (main.folder / "best.weights.h5").exists():
        main.evaluation_missing = f"{main.folder} has no best.weights.h5"
        return
    try:
        from evaluate import evaluate_run

        main.evaluation = evaluate_run(str(main.folder), which="best", split="test", data_dir=data_dir,
                                       batch_size=batch_size)
    except Exception as error:  # the curves and tables do not need it; the page says why it is missing
        main.evaluation_missing = f"evaluate.py could not run: {type(error).__name__}: {error}"
        print(f"warning: {main.evaluation_missing}", file=sys.stderr)


def build_report(run_args: list[str], out: Path, data_dir: str | None = None, batch_size: int = 500,
                 analyses: bool = True) -> dict[str, Path]:
    """Write report.md, report.html, report.json and figures/ into out; return the pages' paths."""
    runs = [load_run(arg) for arg in run_args]
    unfinished = [run for run in runs if not run.history.get("epoch")]
    if runs[0] in unfinished:
        raise UserError(f"the main run {runs[0].folder} has no finished epoch in history.csv (train it first)")
    runs = [run for run in runs if run not in unfinished]
    main = runs[0]
    data_dir = resolve_data_dir(data_dir, main)
    evaluate_main(main, data_dir, batch_size)
    out.mkdir(parents=True, exist_ok=True)
    figures = out / "figures"
    sections = [runs_section(runs, unfinished), curves_section(main, figures), best_section(main),
                summary_section(main),
                *(study_section(study, runs, figures) for study in STUDIES),
                *(analysis_section(module, title, needs_data, main, figures, data_dir, not analyses)
                  for module, title, needs_data in ANALYSES)]
    missing = [block for section in sections for block in section.blocks if isinstance(block, Missing)]
    if missing:
        sections.append(Section("Missing", [Table(["what", "why", "command"],
                                                  [[m.what, m.reason, m.command] for m in missing])]))
    title = f"CIFAR-10 report (CS7011 PA2), main run {main.name}"
    pages = {"markdown": out / "report.md", "html": out / "report.html", "json": out / "report.json"}
    pages["markdown"].write_text(to_markdown(title, sections, out))
    pages["html"].write_text(to_html(title, sections))
    pages["json"].write_text(json.dumps({"main": main.name, "runs": [run_numbers(run) for run in runs],
                                         "studies": {s.key: {label: run.name for label, run in study_runs(s, runs)}
                                                     for s in STUDIES},
                                         "missing": [m.what for m in missing]}, indent=2) + "\n")
    return pages


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders (names under logs/ or paths); the first is the "
                   "main run")
    p.add_argument("--out", help="folder for the pages and figures (default: MAIN_RUN/report)")
    p.add_argument("--data-dir", help="CIFAR-10 copy for evaluate.py and the analyses (default: $CIFAR10_DIR, "
                   "else the main run's own data_dir)")
    p.add_argument("--batch-size", type=int, default=500, help="batch size of evaluation (default: %(default)s)")
    p.add_argument("--no-analyses", action="store_true", help="skip Task VI/VII (filters, neurons, guided backprop)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out = Path(args.out) if args.out else run_folder(args.runs[0]) / "report"
    pages = build_report(args.runs, out, args.data_dir, args.batch_size, not args.no_analyses)
    for kind in ("html", "markdown"):
        print(f"{kind}: {pages[kind]}")
    missing = json.loads(pages["json"].read_text())["missing"]
    if missing:
        print(f"missing ({len(missing)}): {'; '.join(missing)} (the pages say how to make each)", file=sys.stderr)


if __name__ == "__main__":
    main_with_errors(main)
