"""The report's experiment studies, defined once: study.py trains them, report.py recognises
their runs by their Config and draws them with these labels.

A study is a table of variants: each is a run-folder name, the report's legend for it and the
Config fields it sets; every other setting is the same for all of a study's runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from models.config import Config


@dataclass(frozen=True)
class Variant:
    """One configuration of a study: its run-folder name, the report's legend, its settings."""

    name: str
    label: str
    settings: dict[str, Any] = field(default_factory=dict)  # Config field -> value

    def matches(self, config: Config) -> bool:
        return all(getattr(config, key) == value for key, value in self.settings.items())


@dataclass(frozen=True)
class Study:
    name: str
    title: str
    varies: tuple[str, ...]  # the Config fields its variants set
    variants: tuple[Variant, ...]


NO_DROPOUT = {"conv_dropout": 0.0, "fc_dropout": 0.0}
DROPOUT = {"conv_dropout": 0.5, "fc_dropout": 0.5}
BATCHNORM_FIELDS = ("batchnorm", "conv_dropout", "fc_dropout")

# Batch normalization: Ioffe & Szegedy, ICML 2015; dropout: Srivastava et al., JMLR 2014. Legends
# are the report's (Task V): "BN", "BN without dropouts", "NO BN", "NO BN without dropouts".
# The usual learning rates for the optimizers: Adam and RMSprop 1e-3 (Kingma & Ba 2015; Tieleman
# & Hinton 2012), SGD 0.01 with momentum 0.9. Everything else stays the report's.
STUDIES: dict[str, Study] = {study.name: study for study in (
    Study("bn-dropout", "Task V: batch normalization and dropout", BATCHNORM_FIELDS, (
        Variant("bn", "BN", {"batchnorm": "output", **DROPOUT}),
        Variant("bn-no-dropout", "BN without dropouts", {"batchnorm": "output", **NO_DROPOUT}),
        Variant("no-bn", "NO BN", {"batchnorm": "none", **DROPOUT}),
        Variant("no-bn-no-dropout", "NO BN without dropouts", {"batchnorm": "none", **NO_DROPOUT}),
    )),
    Study("bn-everywhere", "Batch normalization after every conv layer", BATCHNORM_FIELDS, (
        Variant("bn-all", "BN everywhere", {"batchnorm": "all", **DROPOUT}),
        Variant("bn-all-no-dropout", "BN everywhere without dropouts",
                {"batchnorm": "all", **NO_DROPOUT}),
    )),
    Study("optimizers", "Miscellaneous: optimizers", ("optimizer", "learning_rate", "momentum"), (
        Variant("adam", "Adam (lr 0.001)", {"optimizer": "adam", "learning_rate": 1e-3}),
        Variant("sgd", "SGD + momentum 0.9 (lr 0.01)",
                {"optimizer": "sgd", "learning_rate": 0.01, "momentum": 0.9}),
        Variant("rmsprop", "RMSprop (lr 0.001)", {"optimizer": "rmsprop", "learning_rate": 1e-3}),
    )),
)}


def variant_of(config: Config, studies: tuple[Study, ...]) -> Variant | None:
    """The first variant of these studies whose settings the config has, or None."""
    return next((v for study in studies for v in study.variants if v.matches(config)), None)
