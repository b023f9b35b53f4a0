"""A run from start to end: its folder and config (new, or continued with --resume), then the
training itself, every epoch committed to the run folder through the runs package."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np

import runs
from data import load_cifar10, select_split
from data.pipeline import Augmentation, make_dataset
from models.config import RESUMABLE_CHANGES, Config, ConfigError, flag_name
from training.budget import budgeted
from training.callbacks import also_into, make_callbacks, no_log, stopped_early
from training.devices import (
    PRECISION_POLICIES,
    make_strategy,
    precision_warning,
    resolve_precision,
    writes_run_folder,
)
from training.setup import build_compiled, restore_checkpoint
from training.tensorboard import EventFiles
from training.tensorboard import unavailable as tensorboard_unavailable

# Evaluation batches are larger than training's: the same numbers, faster on a CPU (bench.py).
EVAL_BATCH_SIZE = 500


@dataclasses.dataclass
class Run:
    """A run about to train: its folder, its config and the state it continues from.

    The chief (the one process that writes the folder) holds the folder's claim until release();
    use the Run as a context manager. A resumed run keeps the runtime block of its config.json.
    """

    folder: Path
    config: Config
    state: dict  # {"epoch": 0, "history": []} for a new run, else the checkpoint's run state
    chief: bool = True
    claim: runs.Claim | None = None
    runtime: dict[str, Any] | None = None

    def release(self) -> None:
        if self.claim is not None:
            self.claim.release()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def prepare_run(settings: dict[str, Any], *, out: Path, name: str | None = None,
                resume: bool = False) -> Run:
    """The run folder OUT/NAME with its config, new from the settings (Config.from_settings) or,
    with resume, the folder's own config.json and checkpoint.

    settings are the explicitly given Config fields. The chief claims the folder before it looks
    into it, so a second training of the same folder is refused; a folder named by the date and
    time is a new one (NAME-2... within the same second). A new run refuses a folder that holds
    one already; a resumed run refuses a setting that differs from its config.json (the same
    value is fine, so that the command that started the run, plus --resume, continues it) except
    epochs and data_dir (resume_epochs says which epochs), and a run its early stop ended. NAME
    is one plain folder name (runs.run_folder). Nothing of the run is rewritten here beyond what
    runs.recover finishes; a refusal releases the claim.
    """
    settings = absolute_data_dir(settings)
    folder = runs.run_folder(out, name) if name else Path(out) / time.strftime("%Y%m%d-%H%M%S")
    if resume:
        return _resumed(folder, settings)
    config = Config.from_settings(settings)
    if not writes_run_folder(config.strategy):
        return Run(folder, config, {"epoch": 0, "history": []}, chief=False)
    claim = runs.claim_folder(folder) if name else runs.claim_new_folder(out, folder.name)
    with _released_on_error(claim):
        if (claim.folder / runs.CHECKPOINT).exists() or (claim.folder / runs.HISTORY).exists():
            raise runs.RunError(f"{claim.folder} already holds a run: pass --resume to continue "
                                f"it, or another --run")
        runs.recover(claim.folder, None)  # what a run killed in its first epoch left
        return Run(claim.folder, config, {"epoch": 0, "history": []}, claim=claim)


def _resumed(folder: Path, settings: dict[str, Any]) -> Run:
    # The saved strategy says whether this process writes the folder; the config is read again
    # under the claim, as another training may have rewritten it until then.
    chief = writes_run_folder(_saved_config(folder).strategy)
    claim = runs.claim_folder(folder) if chief else None
    with _released_on_error(claim):
        config = _saved_config(folder)
        state = runs.read_checkpoint_state(folder / runs.CHECKPOINT)
        if chief:
            runs.recover(folder, state)
        conflicts = resume_conflicts(config, settings)
        if conflicts:
            raise ConfigError(f"--resume continues {folder} with its {runs.CONFIG}; "
                              f"{'; '.join(conflicts)}")
        resume_epochs(folder, config, done=state["epoch"],
                      epochs=settings.get("epochs", config.epochs))
        if stopped_early(config, state):
            best = state.get("best_epoch", 0)
            raise runs.RunError(
                f"{folder} stopped early at epoch {state['epoch']}: no better validation "
                f"accuracy for {config.early_stop} epochs after epoch {best}; start a new run "
                f"to train further")
        config = dataclasses.replace(config, **{k: settings[k] for k in RESUMABLE_CHANGES
                                                if k in settings})
        return Run(folder, config, state, chief=chief, claim=claim,
                   runtime=runs.read_runtime(folder))


def _saved_config(folder: Path) -> Config:
    """The config.json of a run to resume; RunError where there is nothing to resume."""
    if not (folder / runs.CHECKPOINT).exists():
        raise runs.RunError(f"nothing to resume in {folder}: it has no {runs.CHECKPOINT}")
    config = runs.read_config(folder)
    if config is None:
        raise runs.RunError(f"nothing to resume in {folder}: it has no {runs.CONFIG}")
    return config


@contextlib.contextmanager
def _released_on_error(claim: runs.Claim | None) -> Iterator[None]:
    try:
        yield
    except BaseException:
        if claim is not None:
            claim.release()
        raise


def absolute_data_dir(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings with data_dir made absolute: config.json keeps it, and a relative path
    would mean another folder to a script started elsewhere (evaluate.py, a resume)."""
    data_dir = settings.get("data_dir")
    if not data_dir:
        return settings
    return {**settings, "data_dir": os.path.abspath(os.path.expanduser(data_dir))}


def resume_epochs(folder: Path, config: Config, *, done: int, epochs: int) -> None:
    """Refuse an --epochs that resuming cannot honour: fewer than the run has done (its history
    would contradict its config.json), as many (nothing to train), or, for a cosine schedule,
    any other length than it started with: the schedule spreads its decay over the run's epochs
    from the start, so a new length would make the rate jump. Its original length is kept; a
    longer cosine run is a new run."""
    if epochs < done:
        raise ConfigError(f"{folder} has done {done} epochs already, more than --epochs "
                          f"{epochs}; pass a larger --epochs to train further")
    cosine = config.schedule == "cosine"
    if cosine and epochs != config.epochs:
        raise ConfigError(f"--epochs {epochs} would change the length of {folder}'s cosine "
                          f"schedule, fixed at {config.epochs} epochs when it started (its rate "
                          f"would jump); start a new run to train longer")
    if epochs == done:
        further = ("its cosine schedule ends there; start a new run to train longer" if cosine
                   else f"pass --epochs M (more than {done}) to train further")
        raise runs.RunError(f"{folder} has finished all {done} epochs; {further}")


def resume_conflicts(saved: Config, settings: dict[str, Any]) -> list[str]:
    """One phrase per given setting whose value differs from the saved run's, naming its flag
    and both values: "--limit 500 differs from its 1000"."""
    conflicts = []
    for key, value in settings.items():
        old = getattr(saved, key)
        if key in RESUMABLE_CHANGES or value == old:
            continue
        if isinstance(value, bool):  # a switch: the flag alone says its value
            conflicts.append(f"{flag_name(key, value)} differs from its {key}={json.dumps(old)}")
        else:
            shown = "none" if old is None else old
            conflicts.append(f"{flag_name(key)} {value} differs from its {shown}")
    return conflicts


def runtime_info(*, data_source: str, precision: str, replicas: int, train_images: int,
                 command: str) -> dict[str, Any]:
    """What was resolved when the run started, kept beside its settings in config.json."""
    info = {"data_source": data_source, "train_images": train_images,
            "precision_used": precision, "backend": keras.backend.backend(),
            "keras": keras.__version__, "numpy": np.__version__,
            "python": platform.python_version(),
            "replicas": replicas,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": command}
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
    return info


def train(run: Run, *, cpu_devices: int = 1, verbose: int = 1, command: str = "",
          log: Callable[[str], None] = no_log) -> Path:
    """Train the run from its state's epoch to config.epochs; returns the run folder.

    The seeds depend on the epoch it starts from, so a resumed run does not replay the shuffles
    and augmentations of the epochs it already has. command is recorded in config.json. A
    precision this machine only emulates is trained all the same, after a warning line; a
    resumed run with TensorBoard first writes what its event files lack of the epochs done.
    Every line (the first, each epoch's, the warnings, the last) goes to log and, on the chief,
    into the run's train.log.
    """
    started = time.perf_counter()
    config, state, folder = run.config, run.state, run.folder
    strategy = make_strategy(config.strategy, cpu_devices=cpu_devices)
    replicas = getattr(strategy, "num_replicas_in_sync", 1)
    if config.batch_size < replicas:  # each replica takes a share of every batch
        raise ConfigError(f"batch_size {config.batch_size} is smaller than the {replicas} "
                          f"replicas of the {config.strategy} strategy: give each at least one "
                          f"image")
    chief = run.chief
    if not chief:  # other workers of a multi-worker run write into a scratch folder
        folder = Path(tempfile.mkdtemp(prefix="cifar10-worker-")) / folder.name
    keras.utils.set_random_seed(config.seed + state["epoch"])
    precision = resolve_precision(config.precision)
    keras.mixed_precision.set_global_policy(PRECISION_POLICIES[precision])
    data = load_cifar10(config.data_dir)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
        select_split(data, split, config.val_size, config.limit)
        for split in ("train", "val", "test"))
    augmentation = (Augmentation(config.translate, config.flip, config.cutout)
                    if config.augment else None)
    train_data = make_dataset(x_train, y_train, config.batch_size, training=True,
                              augmentation=augmentation, seed=config.seed + state["epoch"])
    eval_batch = max(config.batch_size, EVAL_BATCH_SIZE)
    val_data = make_dataset(x_val, y_val, eval_batch)
    test_data = make_dataset(x_test, y_test, eval_batch)
    steps = len(x_train) // config.batch_size
    if steps == 0:
        raise ConfigError(f"{len(x_train)} training images make no batch of {config.batch_size}")
    first_line = None
    if config.budget_minutes and not state["epoch"]:
        with strategy.scope() if strategy else contextlib.nullcontext():
            config, first_line = budgeted(
                config, lambda: build_compiled(config, steps), x_train, y_train, steps=steps,
                eval_images=len(x_val) + len(x_test), eval_batch_size=eval_batch,
                scratch=run.folder.parent, started=started)
        run.config = config
        keras.utils.set_random_seed(config.seed)  # the network starts as it would unmeasured
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = build_compiled(config, steps)
        if state["epoch"]:
            restore_checkpoint(model, run.folder / runs.CHECKPOINT)
    folder.mkdir(parents=True, exist_ok=True)
    if chief:  # only now: a run whose checkpoint cannot be restored keeps its config.json
        runtime = run.runtime
        if runtime is None:
            runtime = runtime_info(data_source=data.source, precision=precision,
                                   replicas=replicas, train_images=len(x_train),
                                   command=command)
        runs.atomic_save(folder / runs.CONFIG, lambda tmp: config.save(Path(tmp), runtime))
        log = also_into(folder, log)
    if first_line:
        log(first_line)
    log(f"run {folder}: {len(x_train)} train / {len(x_val)} val / {len(x_test)} test images, "
        f"{precision}, {model.count_params():,} parameters, "
        f"epochs {state['epoch'] + 1}..{config.epochs}")
    warning = precision_warning(precision)
    if warning:
        log(warning)
    events = None
    missing = config.tensorboard and tensorboard_unavailable()
    if missing:
        log(missing)
    elif chief and config.tensorboard:
        events = EventFiles(folder)
        events.complete(state, model, every=config.tensorboard)
    callbacks = make_callbacks(config, folder=folder, test_data=test_data, state=state,
                               chief=chief, events=events, log=log)
    model.fit(train_data, validation_data=val_data, epochs=config.epochs,
              initial_epoch=state["epoch"], callbacks=callbacks, shuffle=False, verbose=verbose)
    return folder
