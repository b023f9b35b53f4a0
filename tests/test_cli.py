"""cli: every Config field is a train.py flag, made from the field alone."""

from __future__ import annotations

import dataclasses

from cli.args import Parser, add_config_flags
from cli.training import make_parser
from models.config import Config, setting
from reporting.settings import settings_rows

# train.py's flags that set no Config field: where the run goes, resuming, --dropout (both
# rates at once), and how this process runs.
NOT_FIELDS = {"help", "run", "out", "resume", "dropout", "cpu_devices", "verbose"}


def test_every_config_field_is_a_train_py_flag_and_every_flag_a_field():
    flags = {action.dest for action in make_parser()._actions}
    assert flags - NOT_FIELDS == {f.name for f in dataclasses.fields(Config)}


@dataclasses.dataclass
class Extended(Config):
    gamma: float = setting(0.5, "the gamma of a setting added since")
    fused: bool = setting(False, "fuse something")


def test_a_new_field_is_a_flag_in_help_and_a_row_of_the_settings_table():
    p = Parser(prog="train.py")
    add_config_flags(p, Extended)
    args = p.parse_args(["--gamma", "0.7", "--fused", "--no-flip", "--lr", "0.1"])
    assert (args.gamma, args.fused, args.flip, args.learning_rate) == (0.7, True, False, 0.1)
    assert "the gamma of a setting added since (default: 0.5)" in " ".join(
        p.format_help().split())
    rows = settings_rows(Extended(gamma=0.7))
    assert rows[-1] == ["the gamma of a setting added since", "0.7"]
    assert settings_rows(Extended()) == settings_rows(Config())
