"""models.config: presets, and every setting checked once, where a Config is built."""

from __future__ import annotations

import dataclasses
import json

import pytest

from models.config import PRESETS, Config, ConfigError


def test_presets_then_settings():
    config = Config.from_settings({"preset": "tuned", "epochs": 7})
    assert config.epochs == 7
    assert config.cutout == PRESETS["tuned"]["cutout"] == 16
    assert Config.from_settings({}) == Config()


@pytest.mark.parametrize("field, value, minimum", [
    ("epochs", 0, 1), ("epochs", -1, 1), ("limit", -5, 1), ("limit", 0, 1), ("batch_size", 0, 1),
    ("seed", -1, 0), ("early_stop", -1, 0), ("translate", -3, 0)])
def test_a_count_below_its_minimum_is_one_line(field, value, minimum):
    with pytest.raises(ConfigError) as error:
        Config(**{field: value})
    assert str(error.value) == f"{field} must be at least {minimum}, not {value}"


@pytest.mark.parametrize("settings, message", [
    ({"learning_rate": -1.0}, "learning_rate must be above 0, not -1.0"),
    ({"learning_rate": 0.0}, "learning_rate must be above 0, not 0.0"),
    ({"conv_dropout": -0.1}, "conv_dropout must be in [0, 1), not -0.1"),
    ({"fc_dropout": 1.5}, "fc_dropout must be in [0, 1), not 1.5"),
    ({"cutout": 40}, "cutout must be in [0, 32], not 40"),
    ({"warmup_epochs": -0.5}, "warmup_epochs must be at least 0, not -0.5")])
def test_a_value_outside_its_range_is_one_line(settings, message):
    with pytest.raises(ConfigError) as error:
        Config(**settings)
    assert str(error.value) == message


@pytest.mark.parametrize("settings, message", [
    ({"translate": 32}, "translate must be in [0, 32), not 32"),
    ({"label_smoothing": 2.0}, "label_smoothing must be in [0, 1), not 2.0"),
    ({"decay_factor": 2.0}, "decay_factor must be in (0, 1), not 2.0"),
    ({"optimizer": "lbfgs"}, "optimizer must be one of adam, adamw, sgd, rmsprop, not 'lbfgs'"),
    ({"schedule": "cosine", "warmup_epochs": 5, "epochs": 5},
     "warmup_epochs (5) must be fewer than epochs (5): shorten the warm-up or train longer"),
    ({"schedule": "cosine", "warmup_epochs": 2.5, "epochs": 2},
     "warmup_epochs (2.5) must be fewer than epochs (2): shorten the warm-up or train longer")])
def test_other_invalid_settings_are_one_line(settings, message):
    with pytest.raises(ConfigError) as error:
        Config(**settings)
    assert str(error.value) == message


@pytest.mark.parametrize("settings, message", [
    ({"val_size": 500.5}, "val_size must be an integer, not 500.5"),
    ({"epochs": "ten"}, "epochs must be an integer, not 'ten'"),
    ({"epochs": True}, "epochs must be an integer, not True"),
    ({"limit": 2.0}, "limit must be an integer, not 2.0"),
    ({"augment": 1}, "augment must be true or false, not 1"),
    ({"optimizer": None}, "optimizer must be a string, not None"),
    ({"learning_rate": "0.1"}, "learning_rate must be a finite number, not '0.1'"),
    ({"learning_rate": float("inf")}, "learning_rate must be a finite number, not inf"),
    ({"weight_decay": float("nan")}, "weight_decay must be a finite number, not nan"),
    ({"budget_minutes": float("inf")}, "budget_minutes must be a finite number, not inf")])
def test_a_value_of_the_wrong_type_is_named_with_its_field(settings, message):
    with pytest.raises(ConfigError) as error:
        Config(**settings)
    assert str(error.value) == message


def test_a_float_field_takes_an_integer_and_an_optional_field_none():
    assert Config(learning_rate=1, limit=None, data_dir=None).learning_rate == 1


def test_an_unknown_preset_is_named():
    with pytest.raises(ConfigError, match="no preset 'quick'; choose one of budget, report, tuned"):
        Config.from_settings({"preset": "quick"})


def test_differences_name_both_values():
    assert Config(limit=1000).differences(Config(limit=500)) == {"limit": (1000, 500)}
    assert Config().differences(Config()) == {}


def test_load_ignores_runtime_and_refuses_garbage(tmp_path):
    path = tmp_path / "config.json"
    Config(epochs=3).save(path, {"backend": "tensorflow"})
    assert Config.load(path) == Config(epochs=3)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"config\.json cannot be read as a run's config"):
        Config.load(path)
    path.write_text(json.dumps({**dataclasses.asdict(Config()), "epochs": 0}))
    with pytest.raises(ConfigError, match=r"config.json: epochs must be at least 1, not 0"):
        Config.load(path)
    path.write_text(json.dumps({**dataclasses.asdict(Config()), "val_size": 500.5}))
    with pytest.raises(ConfigError, match=r"config.json: val_size must be an integer, not 500.5$"):
        Config.load(path)
