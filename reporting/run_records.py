"""A run folder as the report sees it: its Config, its history rows and evaluate.py's numbers,
all read through the runs package (which alone knows the files and their formats)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import runs
from models.config import Config

EVALUATION = runs.eval_json(Path(), "best", "test")  # evaluate.py's numbers for the best weights


@dataclass
class RunRecord:
    arg: str  # as given on the command line: the pages quote it in the commands they suggest
    folder: Path
    config: Config  # Config() where the folder has no config.json
    has_config: bool
    history: list[dict]  # runs.read_history's rows, one per finished epoch
    evaluation: dict | None = None
    evaluation_missing: str = (f"no {EVALUATION.as_posix()}, and no --data-dir to run "
                               f"evaluate.py with")
    shown_as: str = ""  # the name in the pages, where two runs' folders share one (distinct)

    @property
    def name(self) -> str:
        return self.shown_as or self.folder.name

    @property
    def best(self) -> dict:
        """The row of the best validation accuracy (best.weights.h5's epoch)."""
        return runs.best_row(self.history)

    def column(self, key: str) -> list[float]:
        return [row[key] for row in self.history]

    def command(self) -> str:
        """The command that trained this run, from its config.json's runtime block: rerunning it
        trains the run afresh."""
        runtime = runs.read_runtime(self.folder)
        return "python " + runtime.get("command", f"train.py --run {self.name}")


def load_run(arg: str) -> RunRecord:
    """The run folder named or given by arg; a folder with neither config.json nor history.csv
    is not a run."""
    folder = runs.find_run(arg)
    config = runs.read_config(folder)
    if config is None and not (folder / runs.HISTORY).exists():
        raise runs.RunError(f"{folder} is not a run folder: it has neither {runs.CONFIG} nor "
                            f"{runs.HISTORY}")
    run = RunRecord(arg, folder, config or Config(), config is not None, runs.read_history(folder))
    try:
        run.evaluation = runs.read_evaluation(folder)
    except runs.RunError as error:  # quoted nowhere; with --data-dir, evaluated again
        run.evaluation_missing = str(error)
    return run


def distinct(given: list[RunRecord]) -> list[RunRecord]:
    """The runs with each folder once (the first time it is given), and runs whose folders share
    a name shown with their parent folder's too ("seeds-a/seed-0"), so no two rows look alike."""
    runs, seen = [], set()
    for run in given:
        if run.folder.resolve() not in seen:
            seen.add(run.folder.resolve())
            runs.append(run)
    names = [run.folder.name for run in runs]
    for run in runs:
        if names.count(run.folder.name) > 1:
            run.shown_as = f"{run.folder.resolve().parent.name}/{run.folder.name}"
    return runs


def run_numbers(run: RunRecord) -> dict:
    """The numbers the tables and captions quote, straight from history.csv (and evaluate.py)."""
    best = run.best
    numbers = {"run": run.name, "folder": run.arg, "epochs": len(run.history),
               "best_epoch": int(best["epoch"]), "best_val_accuracy": best["val_accuracy"],
               "val_loss_at_best": best["val_loss"], "test_accuracy_at_best": best["test_accuracy"],
               "test_loss_at_best": best["test_loss"], "train_loss_at_best": best["train_loss"],
               "last_train_loss": run.history[-1]["train_loss"],
               "last_train_accuracy": run.history[-1]["train_accuracy"],
               "minutes": sum(run.column("seconds")) / 60}
    if run.evaluation:
        numbers["evaluate_test_accuracy"] = run.evaluation["accuracy"]
        numbers["evaluate_test_loss"] = run.evaluation["loss"]
    return numbers
