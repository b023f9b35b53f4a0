"""The compiled network a run trains: its optimizer and learning-rate schedule, loss and metrics,
and putting a checkpoint's optimizer state back for --resume."""

from __future__ import annotations

import zipfile
from pathlib import Path

import keras

import runs
from models.config import Config
from models.losses import make_loss
from models.network import build_from_config
from models.optimizers import FusedAdam, FusedAdamW


def make_optimizer(config: Config, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The config's optimizer; a cosine schedule decays over the run's steps after its warm-up,
    which climbs linearly from a tenth of the rate. The plateau schedule is a callback instead
    (training.callbacks.ResumablePlateau), so the optimizer gets a plain rate for it."""
    lr = config.learning_rate
    if config.schedule == "cosine":
        warmup = round(config.warmup_epochs * steps_per_epoch)
        lr = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=lr / 10 if warmup else lr, warmup_target=lr if warmup else None,
            warmup_steps=warmup, decay_steps=max(1, config.epochs * steps_per_epoch - warmup))
    decay = config.weight_decay or None
    if config.optimizer == "adam":
        return FusedAdam(lr, weight_decay=decay)
    if config.optimizer == "adamw":
        return FusedAdamW(lr, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=config.momentum, nesterov=True,
                                    weight_decay=decay)
    return keras.optimizers.RMSprop(lr, weight_decay=decay)


def build_compiled(config: Config, steps_per_epoch: int) -> keras.Model:
    """The config's network compiled for training (XLA where config.xla, else Keras' choice)."""
    model = build_from_config(config)
    model.compile(optimizer=make_optimizer(config, steps_per_epoch),
                  loss=make_loss(config.label_smoothing), metrics=["accuracy"],
                  jit_compile=config.xla or "auto")
    return model


def restore_checkpoint(model: keras.Model, path: Path) -> None:
    """Weights and optimizer state (step count, moments, learning rate) from checkpoint.keras.

    The optimizer's variables exist only once it is built; loading into an unbuilt one would
    drop its state silently. A checkpoint that cannot be loaded is a RunError, before anything of
    the run is rewritten."""
    model.optimizer.build(model.trainable_variables)
    try:
        model.load_weights(path)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        lines = [line.strip() for line in str(text).splitlines() if line.strip()]
        reason = lines[0][:200] if lines else type(error).__name__
        raise runs.RunError(f"{path} cannot be restored into this run's network ({reason}); "
                            f"its run cannot be resumed") from None


def current_learning_rate(model: keras.Model) -> float:
    """The rate the optimizer applies now (a schedule's value at the current step)."""
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
