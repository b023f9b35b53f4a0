"""The callbacks of a run: the test set's numbers after every epoch, a plateau decay that survives
--resume, and the run folder's files (and TensorBoard summaries) written after every epoch.

Their order matters (make_callbacks): EpochRecorder fills the epoch's logs the others read, and
RunWriter saves ResumablePlateau's counters after the plateau has updated them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import keras

import runs
from models.config import Config
from models.network import build_from_config
from training.setup import current_learning_rate
from training.stopping import deferred
from training.tensorboard import EventFiles, conv1_kernel, filters_due


def no_log(line: str) -> None:
    """The default log: a run's lines go into its train.log only (also_into); train.py passes
    one that prints them too."""


def also_into(folder: Path, log: Callable[[str], None]) -> Callable[[str], None]:
    """log, with every line appended to the run folder's train.log as well: the folder keeps what
    its training printed (a resumed run adds to it), whoever started it and wherever its output
    went."""
    def both(line: str) -> None:
        log(line)
        runs.append_log(folder, line)
    return both


class EpochRecorder(keras.callbacks.Callback):
    """Adds the test loss and accuracy, the epoch's learning rate and its seconds to the epoch's
    logs, so that history.csv holds every number of the epoch in one row."""

    def __init__(self, test_data):
        super().__init__()
        self.test_data = test_data

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()
        self.learning_rate = current_learning_rate(self.model)

    def on_epoch_end(self, epoch, logs=None):
        test = self.model.evaluate(self.test_data, verbose=0, return_dict=True)
        logs["test_loss"], logs["test_accuracy"] = test["loss"], test["accuracy"]
        logs["learning_rate"] = self.learning_rate
        logs["seconds"] = time.perf_counter() - self.start


class ResumablePlateau(keras.callbacks.ReduceLROnPlateau):
    """ReduceLROnPlateau whose counters survive an interruption: they start from saved_state
    (as state() returned it, kept in the checkpoint) instead of from zero."""

    def __init__(self, saved_state: dict | None = None, **options):
        super().__init__(**options)
        self.saved_state = saved_state

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.saved_state:
            self.wait = self.saved_state["wait"]
            self.best = self.saved_state["best"]
            self.cooldown_counter = self.saved_state["cooldown"]

    def state(self) -> dict:
        return {"wait": self.wait, "best": float(self.best), "cooldown": self.cooldown_counter}


class RunWriter(keras.callbacks.Callback):
    """After every epoch: the row into state["history"], then the epoch committed to the run
    folder (save_epoch; chief only), its TensorBoard summaries where events is given (only once
    the epoch is committed: training.tensorboard says why), one summary line, and the early stop.

    state is the run's state (epoch, history, best epoch, plateau counters), updated in place and
    saved inside checkpoint.keras, so that --resume continues exactly here.
    """

    def __init__(self, config: Config, *, folder: Path, state: dict, chief: bool = True,
                 plateau: ResumablePlateau | None = None, events: EventFiles | None = None,
                 log: Callable[[str], None] = no_log):
        super().__init__()
        self.config, self.folder, self.state = config, Path(folder), state
        self.chief, self.plateau, self.events, self.log = chief, plateau, events, log
        # Published weights hold the network alone; Keras' save_weights would add the
        # optimizer's moments (3x the size). A twin without an optimizer is saved instead.
        self.twin = build_from_config(config)

    def on_epoch_end(self, epoch, logs=None):
        row = history_row(epoch + 1, logs)
        diverged = diverged_line(row)
        if diverged:  # before the commit: a NaN epoch is neither saved nor marked best
            raise runs.RunError(diverged)
        # A SIGTERM or Ctrl-C waits while the state moves to this epoch and the epoch commits,
        # so that state["epoch"] is always the epoch the checkpoint holds.
        with deferred():
            state = self.state
            state["history"].append(row)
            state["epoch"] = epoch + 1
            if self.plateau is not None:
                state["plateau"] = self.plateau.state()
            improved = row["val_accuracy"] > state.get("best_val_accuracy", -1.0)
            if improved:
                state["best_val_accuracy"], state["best_epoch"] = row["val_accuracy"], epoch + 1
            if self.chief:
                self.twin.set_weights(self.model.get_weights())
                save_epoch(self.model, self.twin, folder=self.folder, state=state,
                           improved=improved)
                if self.events is not None:
                    self.write_events(row)
            self.log(summary_line(row, self.config.epochs, improved))
        if stopped_early(self.config, state):
            self.log(f"early stop: no better validation accuracy for {self.config.early_stop} "
                     f"epochs")
            self.model.stop_training = True

    def write_events(self, row: dict) -> None:
        """The committed epoch's summaries, with CONV1's filters where due."""
        epoch = row["epoch"]
        last = epoch == self.config.epochs or stopped_early(self.config, self.state)
        due = filters_due(epoch, every=self.config.tensorboard, last=last)
        self.events.write_epoch(row, filters=conv1_kernel(self.model) if due else None)

    def on_train_end(self, logs=None):
        if self.events is not None:
            self.events.close()


def stopped_early(config: Config, state: dict) -> bool:
    """Whether the early stop ends the run at the state's epoch: config.early_stop epochs (0:
    never) have passed without a better validation accuracy. A resumed run asks it too, so that
    it does not train one more epoch only to stop again."""
    return bool(config.early_stop) and (
        state["epoch"] - state.get("best_epoch", 0) >= config.early_stop)


def make_callbacks(config: Config, *, folder: Path, test_data, state: dict, chief: bool = True,
                   events: EventFiles | None = None,
                   log: Callable[[str], None] = no_log) -> list[keras.callbacks.Callback]:
    """The run's callbacks in the order they must run (the module docstring says why); events
    are the run's TensorBoard event files, where its config asks for them."""
    plateau = None
    if config.schedule == "plateau":
        plateau = ResumablePlateau(state.get("plateau"), monitor="val_loss",
                                   factor=config.decay_factor, patience=config.patience,
                                   min_lr=1e-6, verbose=1)
    writer = RunWriter(config, folder=folder, state=state, chief=chief, plateau=plateau,
                       events=events, log=log)
    return [c for c in (EpochRecorder(test_data), plateau, writer) if c is not None]


def history_row(epoch: int, logs: dict) -> dict:
    """One history.csv row (runs.HISTORY_COLUMNS) from the epoch's logs."""
    values = {"epoch": epoch, "learning_rate": logs["learning_rate"], "train_loss": logs["loss"],
              "train_accuracy": logs["accuracy"], "val_loss": logs["val_loss"],
              "val_accuracy": logs["val_accuracy"], "test_loss": logs["test_loss"],
              "test_accuracy": logs["test_accuracy"], "seconds": logs["seconds"]}
    return {k: (v if k == "epoch" else float(v)) for k, v in values.items()}


def diverged_line(row: dict) -> str | None:
    """Why a run must stop at this epoch, if its training or validation loss is not finite:
    every later epoch would train on NaN weights."""
    which = next((k for k in ("train_loss", "val_loss") if not math.isfinite(row[k])), None)
    if which is None:
        return None
    epoch = row["epoch"]
    kept = {1: "nothing is saved", 2: "epoch 1 is kept"}.get(
        epoch, f"epochs 1..{epoch - 1} are kept")
    return (f"the {which.replace('_', ' ')} is {row[which]} at epoch {epoch}; the run stops and "
            f"{kept}: start a new run with a lower learning rate (this epoch's was "
            f"{row['learning_rate']:.2e})")


def summary_line(row: dict, epochs: int, improved: bool) -> str:
    """The epoch's line in the run's log; "*best" marks a new best validation accuracy."""
    return (f"epoch {row['epoch']}/{epochs}  lr {row['learning_rate']:.2e}  "
            f"train {row['train_loss']:.4f}/{row['train_accuracy']:.4f}  "
            f"val {row['val_loss']:.4f}/{row['val_accuracy']:.4f}  "
            f"test {row['test_loss']:.4f}/{row['test_accuracy']:.4f}  "
            f"{row['seconds']:.1f}s{'  *best' if improved else ''}")


def save_epoch(model: keras.Model, twin: keras.Model, *, folder: Path, state: dict,
               improved: bool) -> None:
    """Commit the epoch, with checkpoint.keras as its single commit point, each file atomically:
    the weights (last, and best where improved) staged under temporary names, then the
    checkpoint, whose state names them, then history.csv, then the weights renamed to their
    final names.

    A kill before the checkpoint leaves the epoch uncommitted (runs.recover deletes its staged
    files); after it, runs.recover finishes the renames. Published weights are thus never from an
    epoch the checkpoint lacks, and, history.csv coming before them, never from one it lacks.
    A write that fails before the checkpoint (a full disk) deletes the staged files itself.
    Each file's size is checked against the free space first (runs.atomic_save says why).
    """
    epoch = state["epoch"]
    staged = {which: runs.staged_name(epoch, which)
              for which in (("last", "best") if improved else ("last",))}
    try:
        for name in staged.values():
            runs.atomic_save(folder / name, twin.save_weights, size=runs.model_bytes(twin))
        state["staged"] = staged
        runs.atomic_save(folder / runs.CHECKPOINT,
                         lambda tmp: runs.save_checkpoint(model, tmp, state),
                         size=runs.model_bytes(model, optimizer=True))
    except Exception:
        runs.discard_staged(folder, staged)
        raise
    runs.atomic_save(folder / runs.HISTORY,
                     lambda tmp: runs.write_history(Path(tmp), state["history"]))
    runs.publish_weights(folder, state)
