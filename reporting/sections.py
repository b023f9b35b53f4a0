"""The report's sections, each a list of page blocks: the runs, Task I's curves, Tasks II/III
(best weights and settings), Task IV (the network), the study figures, the minutes to accuracy
of the main and featured runs next to a seeds study's runs, and the accuracy at each budget."""

from __future__ import annotations

from pathlib import Path

from data import CLASS_NAMES
from models.network import build_from_config
from models.summary import summary_markdown
from reporting.comparisons import Comparison, describe, members
from reporting.curve import budget_points, curve_rows
from reporting.pages import Missing, Section, Table, Text, loss, markdown_blocks, percent
from reporting.plots import SPLITS, plot_budgets, plot_curves, plot_minutes, plot_study
from reporting.run_records import RunRecord, load_run, run_numbers
from reporting.seed_summary import seed_runs
from reporting.settings import settings_rows
from reporting.timing import THRESHOLDS, minutes_rows, minutes_to_accuracy, threshold_name
from runs import WEIGHTS


def runs_section(runs: list[RunRecord], unfinished: list[RunRecord],
                 featured: RunRecord | None = None) -> Section:
    header = ["run", "configuration", "epochs", "best epoch", "best val accuracy",
              "test accuracy at best epoch", "evaluate.py test accuracy", "minutes"]
    rows = []
    for run in runs:
        n = run_numbers(run)
        evaluated = percent(n["evaluate_test_accuracy"]) if "evaluate_test_accuracy" in n else "-"
        rows.append([run.name, describe(run.config), str(n["epochs"]), str(n["best_epoch"]),
                     percent(n["best_val_accuracy"]), percent(n["test_accuracy_at_best"]),
                     evaluated, f"{n['minutes']:.1f}"])
    text = Text(f"The main run is {runs[0].name} ({runs[0].arg}), the first one given. 'Test "
                f"accuracy at best epoch' is history.csv's test accuracy at the epoch of the best "
                f"validation accuracy (the best.weights.h5 weights); 'evaluate.py' is the same "
                f"weights re-evaluated by evaluate.py. {analyses_text(runs[0], featured)}")
    missing = [Missing(f"run {run.name}", "no finished epoch in history.csv", run.command())
               for run in unfinished]
    return Section("Runs", [text, Table(header, rows), *missing])


def analyses_text(main: RunRecord, featured: RunRecord | None) -> str:
    if featured is None or featured is main:
        return ("The analyses (Tasks VI and VII, and the explanations) use the main run's best "
                "weights.")
    return (f"Tasks I-IV are the main run's; the analyses (Tasks VI and VII, and the "
            f"explanations) use the best weights of the featured run, {featured.name} "
            f"({featured.arg}).")


def curves_section(main: RunRecord, figures: Path) -> Section:
    return Section("Task I: learning curves", [plot_curves(main, "loss", figures),
                                               plot_curves(main, "accuracy", figures)])


def best_section(main: RunRecord) -> Section:
    """Task II's test accuracy of the best-on-validation weights, Task III's settings."""
    n = run_numbers(main)
    weights = WEIGHTS["best"]
    rows = [["best validation accuracy",
             f"{percent(n['best_val_accuracy'])} (epoch {n['best_epoch']})"],
            ["test accuracy at that epoch (history.csv)", percent(n["test_accuracy_at_best"])]]
    blocks: list = []
    if main.evaluation:
        rows.append([f"test accuracy of {weights} (evaluate.py)",
                     f"{percent(main.evaluation['accuracy'])} on "
                     f"{main.evaluation.get('n_images', '?')} images, "
                     f"loss {loss(main.evaluation['loss'])}"])
    else:
        blocks.append(Missing("evaluate.py's test accuracy of the best weights",
                              main.evaluation_missing,
                              f"python evaluate.py {main.arg} --data-dir DATA"))
    blocks = [Table(["Task II: best-on-validation weights", "value"], rows), *blocks,
              Table(["Task III: setting", "value"], settings_rows(main.config))]
    if main.evaluation and main.evaluation.get("per_class"):
        blocks.append(per_class_table(main.evaluation["per_class"]))
    return Section("Tasks II and III: test accuracy of the best-on-validation weights, and its "
                   "settings", blocks)


def per_class_table(per_class: dict | list) -> Table:
    """evaluate.py's per-class accuracies, by class name (a dict) or in class order (a list)."""
    items = (per_class.items() if isinstance(per_class, dict)
             else zip(CLASS_NAMES, per_class, strict=True))
    return Table(["class", "test accuracy (evaluate.py)"],
                 [[name, percent(value)] for name, value in items])


def summary_section(main: RunRecord) -> Section:
    """Task IV: models.summary's table (layers, shapes, parameters, totals) of the main run's
    network."""
    return Section("Task IV: the network",
                   markdown_blocks(summary_markdown(build_from_config(main.config))))


def study_section(comparison: Comparison, runs: list[RunRecord], figures: Path) -> Section:
    """A study's table and its three overlays (train, validation, test), or what is missing."""
    found = members(comparison, runs)
    if not found:
        reason = (f"no two given runs differ only in {', '.join(comparison.varies)}; pass the "
                  f"study's run folders")
        return Section(comparison.title, [Missing(f"the {comparison.key} study", reason,
                                                  f"{comparison.command} --data-dir DATA")])
    header = ["configuration", "run", "epochs", "best epoch", "best val accuracy",
              "test accuracy at best epoch", "lowest val loss", "last train loss",
              "last train accuracy"]
    rows = [[variant.label, run.name, str(len(run.history)), f"{run.best['epoch']:g}",
             percent(run.best["val_accuracy"]), percent(run.best["test_accuracy"]),
             loss(min(run.column("val_loss"))), loss(run.history[-1]["train_loss"]),
             percent(run.history[-1]["train_accuracy"])] for variant, run in found]
    given = {variant.name for variant, _ in found}
    absent = [v.label for v in comparison.study.variants if v.name not in given]
    blocks = [Missing(f"{', '.join(absent)} in the {comparison.key} study", "no such run given",
                      f"{comparison.command} --data-dir DATA")] if absent else []
    plots = [plot_study(comparison, found, split, figures) for split in SPLITS]
    return Section(comparison.title, [*blocks, Table(header, rows), *plots])


def minutes_section(shown: list[RunRecord], seeds: Path, figures: Path) -> Section:
    """Minutes to each test accuracy threshold of the runs shown (the main and featured runs:
    the recipes the seeds are set against) and of the seed runs of a seeds study (study.py
    seeds), as a table and a figure."""
    found = [load_run(str(folder)) for folder in seed_runs(seeds)]
    title = "Minutes to accuracy"
    if not found:
        return Section(title, [Missing(f"the seed runs of {seeds}",
                                       "no seed-N run folder with a finished epoch",
                                       f"python study.py seeds --preset PRESET --out {seeds}")])
    named = [(run.name, run) for run in shown] + [(f"{seeds.name}/{run.name}", run)
                                                  for run in found]
    reached = ", ".join(map(threshold_name, THRESHOLDS))
    text = Text(f"Wall-clock minutes of training (history.csv's seconds, summed epoch by epoch) "
                f"until the test accuracy first reached {reached}; the seed runs are those of "
                f"{seeds}.")
    table = minutes_rows([(name, run.history) for name, run in named])
    numbers = {name: {f"{t:g}": m for t, m in minutes_to_accuracy(run.history).items()}
               for name, run in named}
    return Section(title, [text, table, plot_minutes(named, THRESHOLDS, figures)],
                   {"minutes_to_test_accuracy": numbers})


def curve_section(shown: list[RunRecord], folder: Path, figures: Path) -> Section:
    """The budget recipe's test accuracy at each budget-N run (or seeds study) in folder, beside
    the runs shown at the same epochs of their own schedules, as a table and a figure."""
    points = budget_points(folder)
    title = "Accuracy at a budget of epochs"
    if not points:
        return Section(title, [Missing(f"budget-N runs in {folder}", "no budget-N folder with a "
                                       "finished run", f"python study.py seeds --preset budget "
                                       f"--epochs N --out {folder}/budget-N")])
    references = [(run.name, run.history) for run in shown]
    header, rows = curve_rows(points, references)
    text = Text(f"Test accuracy of the budget recipe trained for N epochs (its schedule ends at "
                f"epoch N; evaluate.py, mean ± sample std over the seeds in {folder}/budget-N), "
                f"beside the test accuracy the other recipes' history.csv holds at epoch N of "
                f"their longer schedules.")
    numbers = {str(epochs): accuracies for epochs, accuracies in points.items()}
    return Section(title, [text, Table(header, rows), plot_budgets(points, references, figures)],
                   {"budget_test_accuracy": numbers})
