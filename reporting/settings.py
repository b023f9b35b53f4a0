"""The Task III settings table, derived from a run's Config.

The report's own rows are shown for every run; any other setting appears as soon as it differs
from the report's recipe (Config()'s defaults), so that no setting a run was trained with goes
unsaid. A setting that the run's schedule, optimizer or augmentation does not use is never
shown: a cosine run has no patience, and only SGD takes a momentum.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from models.config import Config

RECIPE = Config()


def _always(config: Config) -> bool:
    return True


def _plateau(config: Config) -> bool:
    return config.schedule == "plateau"


def _cosine(config: Config) -> bool:
    return config.schedule == "cosine"


@dataclass(frozen=True)
class Setting:
    """One row: its name, the Config fields it shows and how it says them."""

    name: str
    fields: tuple[str, ...]
    value: Callable[[Config], str]
    report: bool = False  # one of the report's own rows: shown whenever it applies
    applies: Callable[[Config], bool] = _always  # whether training uses these fields at all

    def shown(self, config: Config) -> bool:
        differs = any(getattr(config, f) != getattr(RECIPE, f) for f in self.fields)
        return self.applies(config) and (self.report or differs)


def _augmentation(config: Config) -> str:
    parts = ([f"random shifts up to {config.translate} px"] if config.translate else []) + (
        ["horizontal flips"] if config.flip else [])
    return ", ".join(parts) if config.augment and parts else "none"


def _warmup(config: Config) -> str:
    if not config.warmup_epochs:
        return "none"
    lr = config.learning_rate
    return f"{config.warmup_epochs:g} epochs, linear from {lr / 10:g} to {lr:g}"


# In the page's order. Every Config field of the recipe is in one row (tests/test_reporting.py
# checks it); data_dir and tensorboard are not the recipe's.
SETTINGS = (
    Setting("patience parameter p", ("patience",), lambda c: str(c.patience), True, _plateau),
    Setting("learning-rate decay", ("schedule", "decay_factor"),
            lambda c: f"x{c.decay_factor:g} on a validation-loss plateau", True, _plateau),
    Setting("learning-rate decay", ("schedule",),
            lambda c: f"cosine, to 0 at the end of epoch {c.epochs}", True, _cosine),
    Setting("warm-up", ("warmup_epochs",), _warmup, True, _cosine),
    Setting("dropout rate (conv / FC)", ("conv_dropout", "fc_dropout"),
            lambda c: f"{c.conv_dropout:g} / {c.fc_dropout:g}", True),
    Setting("batch size", ("batch_size",), lambda c: str(c.batch_size), True),
    Setting("initial learning rate", ("learning_rate",), lambda c: f"{c.learning_rate:g}", True),
    Setting("optimizer", ("optimizer",), lambda c: c.optimizer, True),
    Setting("momentum", ("momentum",), lambda c: f"{c.momentum:g} (Nesterov)", True,
            lambda c: c.optimizer == "sgd"),
    Setting("weight decay", ("weight_decay",), lambda c: f"{c.weight_decay:g}"),
    Setting("label smoothing", ("label_smoothing",), lambda c: f"{c.label_smoothing:g}"),
    Setting("initialization", (), lambda c: "Xavier (Glorot uniform)", True),
    Setting("batch normalization", ("batchnorm",), lambda c: c.batchnorm, True),
    Setting("data augmentation", ("augment", "translate", "flip"), _augmentation, True),
    Setting("Cutout", ("cutout",),
            lambda c: f"one {c.cutout}x{c.cutout} px square zeroed per training image" if c.cutout
            else "none", applies=lambda c: c.augment),
    Setting("epochs", ("epochs",), lambda c: str(c.epochs), True),
    Setting("time budget", ("budget_minutes",),
            lambda c: f"{c.budget_minutes:g} minutes, measured as {c.epochs} epochs"
            if c.budget_minutes else "none"),
    Setting("early stopping", ("early_stop",),
            lambda c: f"after {c.early_stop} epochs without a better validation accuracy"
            if c.early_stop else "none"),
    Setting("validation images", ("val_size",), lambda c: f"the last {c.val_size} training images"),
    Setting("training images", ("limit",),
            lambda c: f"the first {c.limit}" if c.limit is not None else "all the others"),
    Setting("seed", ("seed",), lambda c: str(c.seed), True),
    Setting("preset", ("preset",), lambda c: c.preset, True),
    Setting("precision", ("precision",), lambda c: c.precision),
    Setting("XLA", ("xla",), lambda c: "on" if c.xla else "off"),
    Setting("distribution strategy", ("strategy",), lambda c: c.strategy),
)


# Where the data copy lies and whether the run wrote TensorBoard event files: not the recipe's.
NOT_RECIPE = ("data_dir", "tensorboard")


def settings_rows(config: Config) -> list[list[str]]:
    """The table's rows for one run: [name, value]. A field no row above says (a setting added
    since) is shown by its flag's help and its value wherever it differs from its default."""
    rows = [[s.name, s.value(config)] for s in SETTINGS if s.shown(config)]
    said = {f for s in SETTINGS for f in s.fields} | set(NOT_RECIPE)
    defaults = type(config)()
    return rows + [[f.metadata["help"], str(getattr(config, f.name))]
                   for f in dataclasses.fields(config) if f.name not in said
                   and getattr(config, f.name) != getattr(defaults, f.name)]

