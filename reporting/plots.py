"""The report's plots: the main run's learning curves (Task I) and the study overlays, each saved
as PNG and PDF with analysis.figures.save_figure, so that a rebuild writes the same bytes."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import MaxNLocator

from analysis.figures import save_figure
from reporting.comparisons import Comparison
from reporting.pages import Figure, loss, percent
from reporting.run_records import RunRecord, run_numbers
from reporting.timing import cumulative_minutes, threshold_name
from training.studies import Variant

SPLITS = {"train": "train", "val": "validation", "test": "test"}  # history.csv prefix -> name
PNG_DPI = 120
ZOOM = 15  # percentage points the minutes figure shows under its lowest threshold


def shortened(name: str, width: int = 40) -> str:
    """A run's name as a figure shows it: a long one (up to 255 characters) keeps its start and
    end around an ellipsis, so that titles and legends stay inside the figure."""
    if len(name) <= width:
        return name
    keep = (width - 1) // 2
    return f"{name[:keep]}…{name[-keep:]}"


def save_plot(fig: MplFigure, figures: Path, stem: str, caption: str) -> Figure:
    """PNG for the pages, PDF for print. The figures are made without pyplot (no global state
    to clean up, no backend to choose), so there is nothing to close."""
    png = save_figure(fig, figures / f"{stem}.png", dpi=PNG_DPI, close=False)
    pdf = save_figure(fig, figures / f"{stem}.pdf", close=False)
    return Figure(png, caption, pdf)


def plot_curves(run: RunRecord, metric: str, figures: Path) -> Figure:
    """Task I: train, validation and test curves of one metric, the best validation epoch
    marked."""
    epochs, best = run.column("epoch"), run.best
    fig = MplFigure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    scale = 100 if metric == "accuracy" else 1
    for split, name in SPLITS.items():
        ax.plot(epochs, [scale * v for v in run.column(f"{split}_{metric}")], label=name,
                marker=".")
    ax.axvline(best["epoch"], color="grey", linestyle=":",
               label=f"best validation accuracy (epoch {best['epoch']:g})")
    ax.plot(best["epoch"], scale * best[f"val_{metric}"], marker="*", markersize=14, color="C1")
    ax.set(xlabel="epoch",
           ylabel="accuracy (%)" if metric == "accuracy" else "negative log-likelihood",
           title=f"model {metric} ({shortened(run.name)})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend()
    n = run_numbers(run)
    if metric == "loss":
        caption = (f"Negative log-likelihood per epoch of run {run.name} on train, validation and "
                   f"test. At the best validation epoch ({n['best_epoch']} of {n['epochs']}): "
                   f"train {loss(n['train_loss_at_best'])}, validation "
                   f"{loss(n['val_loss_at_best'])}, test {loss(n['test_loss_at_best'])}. The train "
                   f"loss is Keras' running mean over the epoch with dropout and augmentation on.")
    else:
        caption = (f"Accuracy per epoch of run {run.name}. Best validation accuracy "
                   f"{percent(n['best_val_accuracy'])} at epoch {n['best_epoch']}; test accuracy "
                   f"of those weights {percent(n['test_accuracy_at_best'])}; last train accuracy "
                   f"{percent(n['last_train_accuracy'])}.")
    return save_plot(fig, figures, f"task1-{metric}", caption)


def plot_study(comparison: Comparison, members: list[tuple[Variant, RunRecord]], split: str,
               figures: Path) -> Figure:
    """One split of a study: loss and accuracy per epoch of every configuration, overlaid."""
    fig = MplFigure(figsize=(11, 4.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    for i, (variant, run) in enumerate(members):
        colour, line = comparison.style(run.config, i)
        epochs = run.column("epoch")
        left.plot(epochs, run.column(f"{split}_loss"), color=colour, linestyle=line,
                  label=variant.label)
        right.plot(epochs, [100 * v for v in run.column(f"{split}_accuracy")], color=colour,
                   linestyle=line, label=variant.label)
    left.set(xlabel="epoch", ylabel="negative log-likelihood", title=f"{SPLITS[split]} loss")
    right.set(xlabel="epoch", ylabel="accuracy (%)", title=f"{SPLITS[split]} accuracy")
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    right.legend()
    return save_plot(fig, figures, f"{comparison.key}-{split}",
                     study_caption(comparison, members, split))


def study_caption(comparison: Comparison, members: list[tuple[Variant, RunRecord]],
                  split: str) -> str:
    """What the overlay shows, and the numbers of each line that the split is about."""
    what = (f"{comparison.title.split(': ')[-1].capitalize()}: {SPLITS[split]} loss and accuracy "
            f"per epoch. ")
    if split == "train":
        return what + "Last epoch: " + "; ".join(
            f"{v.label} {loss(run.history[-1]['train_loss'])} / "
            f"{percent(run.history[-1]['train_accuracy'])}" for v, run in members) + "."
    if split == "val":
        return what + "Best validation accuracy: " + "; ".join(
            f"{v.label} {percent(run.best['val_accuracy'])} (epoch {run.best['epoch']:g})"
            for v, run in members) + "."
    return what + "Test accuracy at the best validation epoch: " + "; ".join(
        f"{v.label} {percent(run.best['test_accuracy'])}" for v, run in members) + "."


def plot_minutes(named: list[tuple[str, RunRecord]], thresholds: tuple[float, ...],
                 figures: Path) -> Figure:
    """Test accuracy against the minutes of training (history.csv's seconds, summed), the
    thresholds marked: what a user waits for each accuracy, whatever an epoch costs."""
    fig = MplFigure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    for name, run in named:
        ax.plot(cumulative_minutes(run.history), [100 * v for v in run.column("test_accuracy")],
                label=shortened(name), marker=".", markersize=3)
    for threshold in thresholds:
        ax.axhline(100 * threshold, color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="minutes of training (history.csv)", ylabel="test accuracy (%)",
           title="test accuracy against wall-clock minutes")
    # The first epochs' low accuracies would squash the thresholds' band; cut them off where
    # every run climbs past the cut.
    bottom = 100 * min(thresholds) - ZOOM
    if all(100 * max(run.column("test_accuracy")) > bottom for _, run in named):
        ax.set_ylim(bottom=bottom)
    ax.grid(alpha=0.3)
    ax.legend()
    caption = ("Test accuracy at the end of each epoch against the minutes of training so far "
               "(history.csv's seconds, summed); the dotted lines are "
               f"{', '.join(threshold_name(t) for t in thresholds)}.")
    return save_plot(fig, figures, "minutes-to-accuracy", caption)


def plot_budgets(points: dict[int, list[float]], references: list[tuple[str, list[dict]]],
                 figures: Path) -> Figure:
    """The budget recipe's test accuracy at each budget (each seed a dot, the mean a line)
    against the other recipes' test accuracy epoch by epoch of their own schedules."""
    fig = MplFigure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    for name, history in references:
        ax.plot([row["epoch"] for row in history],
                [100 * row["test_accuracy"] for row in history],
                label=f"{shortened(name)} (its schedule)")
    budgets = list(points)
    ax.plot(budgets, [100 * sum(v) / len(v) for v in points.values()], color="black",
            marker="o", label="budget recipe, schedule ending at the epoch (mean)")
    for epochs, accuracies in points.items():
        ax.scatter([epochs] * len(accuracies), [100 * v for v in accuracies], color="black",
                   s=8, zorder=3)
    ax.set_xscale("log")
    ax.set_xticks(budgets, [str(b) for b in budgets])
    ax.set(xlabel="epochs (log scale)", ylabel="test accuracy (%)",
           title="test accuracy at a budget of epochs", ylim=(60, 92))
    ax.grid(alpha=0.3)
    ax.legend()
    caption = ("The budget recipe trained for N epochs (dots: seeds; line: their mean), against "
               "the test accuracy of the other recipes at each epoch of their own schedules.")
    return save_plot(fig, figures, "accuracy-at-budget", caption)
