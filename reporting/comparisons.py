"""Which of the given runs make each study figure of the report, recognised by their Config.

The studies themselves (variants, labels, settings) are training.studies'; here only which
studies share a figure, how their lines are drawn, and the grouping rule: a figure compares runs
whose other settings are all the same.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass

from models.config import Config
from reporting.run_records import RunRecord
from training.studies import STUDIES, Study, Variant

# Settings that do not change what a run learns; runs differing only in these still compare.
NOT_COMPARED = ("data_dir", "preset", "precision", "xla", "strategy", "tensorboard")

Style = Callable[[Config, int], tuple[str, str]]  # (config, position in the legend) -> colour, line


def batchnorm_style(config: Config, position: int) -> tuple[str, str]:
    """A colour per batch-norm placement; dashed without dropout, so each pair reads at once."""
    colour = {"output": "C0", "none": "C3", "all": "C2"}[config.batchnorm]
    return colour, "--" if config.conv_dropout == config.fc_dropout == 0 else "-"


def legend_style(config: Config, position: int) -> tuple[str, str]:
    """Colours by legend position, past the ones the batch-norm figure uses."""
    return f"C{(position + 4) % 10}", "-"


@dataclass(frozen=True)
class Comparison:
    """One study figure: the study as the report ran it, with related studies' runs drawn
    beside it when they are given (they are not missing when absent)."""

    key: str  # the figures' file names: KEY-train.png, ...
    study: Study
    style: Style
    extra: tuple[Study, ...] = ()

    @property
    def title(self) -> str:
        return self.study.title

    @property
    def variants(self) -> tuple[Variant, ...]:
        """Every variant the figure can show, in legend order."""
        return self.study.variants + tuple(v for s in self.extra for v in s.variants)

    @property
    def varies(self) -> tuple[str, ...]:
        fields = [f for s in (self.study, *self.extra) for f in s.varies]
        return tuple(dict.fromkeys(fields))

    @property
    def command(self) -> str:
        """The command that trains the study (study.py names studies as training.studies does)."""
        return f"python study.py {self.study.name}"


COMPARISONS = (
    Comparison("bn-dropout", STUDIES["bn-dropout"], batchnorm_style, (STUDIES["bn-everywhere"],)),
    Comparison("optimizers", STUDIES["optimizers"], legend_style),
)


def variant(comparison: Comparison, config: Config) -> Variant | None:
    return next((v for v in comparison.variants if v.matches(config)), None)


def members(comparison: Comparison, runs: list[RunRecord]) -> list[tuple[Variant, RunRecord]]:
    """The largest set of runs whose configs differ only in the fields the comparison varies,
    one per variant (the first run given wins a duplicate), in legend order; [] if under two."""
    order = {v.name: i for i, v in enumerate(comparison.variants)}
    groups: dict[str, dict[str, tuple[Variant, RunRecord]]] = {}
    for run in runs:
        found = variant(comparison, run.config) if run.has_config else None
        if found is None:
            continue
        rest = {k: v for k, v in dataclasses.asdict(run.config).items()
                if k not in NOT_COMPARED and k not in comparison.varies}
        group = groups.setdefault(json.dumps(rest, sort_keys=True), {})
        group.setdefault(found.name, (found, run))
    largest = max(groups.values(), key=len, default={})
    if len(largest) < 2:
        return []
    return sorted(largest.values(), key=lambda pair: order[pair[0].name])


def describe(config: Config) -> str:
    """A run's place in the studies, as the runs table shows it: each comparison's legend label
    (e.g. "BN, Adam (lr 0.001)"), or the varied settings that differ from the report's recipe."""
    recipe = Config()
    parts = []
    for comparison in COMPARISONS:
        found = variant(comparison, config)
        if found is not None:
            parts.append(found.label)
            continue
        differing = [f for f in comparison.varies if getattr(config, f) != getattr(recipe, f)]
        parts.append(", ".join(f"{f} {value_text(getattr(config, f))}" for f in differing))
    return ", ".join(parts)


def value_text(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
