"""One dataclass holds a run's whole configuration; train.py writes it to the run's config.json."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A setting is out of range or unknown; the message names it."""


# Named recipes. "report" is the report's settings. "tuned" keeps the same network and parameter
# count and changes only the recipe: AdamW with decoupled weight decay, warm-up then cosine decay,
# label smoothing, weaker dropout (0.1 after the conv blocks, 0.3 after the FC layers; the report's
# 0.5 after every conv block left the network underfitting: 83.3% against 87.5% best validation
# accuracy in the same 70-80 epochs), Cutout 16 in place of the conv dropout it lowers (with 0.2
# conv dropout and Cutout the network underfit: 86.9% train against 88.3% val) and a longer
# schedule. "budget" is the recipe for a budget of a few epochs, --epochs N (default 20) or
# --budget-minutes M: a warm-up of one epoch, then cosine decay to zero at the last step of epoch
# N. Within 10-20 epochs the network underfits with the regularization that pays over 150, so it
# has less of it (chosen on validation accuracy: logs/reference/budget-10/README.md).
PRESETS: dict[str, dict[str, Any]] = {
    "report": {},
    "tuned": {"optimizer": "adamw", "learning_rate": 2e-3, "weight_decay": 0.05,
              "label_smoothing": 0.1, "schedule": "cosine", "warmup_epochs": 3, "conv_dropout": 0.1,
              "fc_dropout": 0.3, "cutout": 16, "epochs": 150},
    "budget": {"optimizer": "adamw", "learning_rate": 2e-3, "weight_decay": 0.05,
               "label_smoothing": 0.1, "schedule": "cosine", "warmup_epochs": 1,
               "conv_dropout": 0.0, "fc_dropout": 0.0, "translate": 4, "epochs": 20},
}


def setting(default: Any, help: str, **flag: Any) -> Any:
    """A Config field with what its command-line flag says of it (cli.args.add_config_flags):
    help, and choices, aliases or a metavar where it has them. The field is the one place a
    setting is defined: its flag, its check, its row in the report all follow from it."""
    return dataclasses.field(default=default, metadata={"help": help, **flag})


def flag_name(name: str, value: Any = None) -> str:
    """train.py's flag that sets the Config field name: --conv-dropout for conv_dropout; for a
    switch, the flag that sets it to value (--no-flip for flip=False, --xla for xla=True)."""
    flag = name.replace("_", "-")
    return f"--no-{flag}" if value is False else f"--{flag}"


@dataclasses.dataclass
class Config:
    preset: str = setting("report", "named recipe", choices=tuple(sorted(PRESETS)))
    # The network (models.network.build_model).
    batchnorm: str = setting("output", "batch-norm placement",
                             choices=("output", "all", "none"))
    conv_dropout: float = setting(0.5, "dropout after conv blocks, 0 removes it")
    fc_dropout: float = setting(0.5, "dropout after FC1 and FC2, 0 removes it")
    # Optimization. The defaults are the report's: Adam 1e-3, batch 100, decay on a patience of 5.
    optimizer: str = setting("adam", "optimizer", choices=("adam", "adamw", "sgd", "rmsprop"))
    learning_rate: float = setting(1e-3, "initial learning rate", aliases=("--lr",))
    momentum: float = setting(0.9, "SGD momentum")
    weight_decay: float = setting(0.0, "decoupled weight decay")
    label_smoothing: float = setting(0.0, "label smoothing of the loss")
    schedule: str = setting("plateau", "learning-rate schedule", choices=("plateau", "cosine"))
    patience: int = setting(5, "plateau epochs before the rate decays")
    decay_factor: float = setting(0.1, "rate multiplier on a plateau")
    # Fractions too: a 3-epoch run wants a warm-up of part of an epoch.
    warmup_epochs: float = setting(0, "linear warm-up for cosine, in epochs, fractions too")
    batch_size: int = setting(100, "images per training step")
    epochs: int = setting(60, "epochs to train")
    # A time budget in minutes in place of epochs: train.py measures this machine's speed and
    # saves the epochs it affords here as the run's epochs (training.budget).
    budget_minutes: float | None = setting(
        None, "in place of --epochs: as many epochs as fit M minutes on this machine, measured "
        "on the run's first steps and saved as its epochs", metavar="M")
    early_stop: int = setting(0, "stop after N epochs without a better val accuracy, 0 for never",
                              metavar="N")
    # Data.
    augment: bool = setting(True, "no translation, flips or Cutout")
    translate: int = setting(4, "largest random shift in pixels")
    flip: bool = setting(True, "no random horizontal flips")
    cutout: int = setting(0, "side of the random square Cutout zeroes, 0 for none")
    val_size: int = setting(5000, "last N training images for validation", metavar="N")
    limit: int | None = setting(None, "train on the first N training images only (smoke runs)",
                                metavar="N")
    data_dir: str | None = setting(None, "CIFAR-10 folder or tar.gz (default: $CIFAR10_DIR, "
                                   "else the Keras download)")
    seed: int = setting(0, "seed of the weights, shuffles and augmentation")
    # Speed and scale.
    precision: str = setting("auto", "auto: bf16 on CPUs with AVX512-BF16/AMX, fp16 on GPUs, "
                             "else fp32", choices=("auto", "fp32", "bf16", "fp16"))
    xla: bool = setting(False, "compile the training step with XLA")
    strategy: str = setting("auto", "tf.distribute strategy (auto: mirrored over several GPUs, "
                            "multiworker with TF_CONFIG)",
                            choices=("auto", "mirrored", "multiworker"))
    # TensorBoard event files (training.tensorboard), with CONV1's filters as an image every N
    # epochs and at the last; 0 writes none. On by default: they cost milliseconds and kB an
    # epoch.
    tensorboard: int = setting(5, "TensorBoard event files in RUN/tensorboard/, with CONV1's "
                               "filters every N epochs, 0 for none; viewing them needs `pip "
                               "install tensorboard`", metavar="N")

    def __post_init__(self) -> None:
        problem = next((message for message in _problems(self) if message), None)
        if problem:
            raise ConfigError(problem)

    def save(self, path: Path, runtime: dict[str, Any]) -> None:
        """Write the settings, plus what was resolved at run time (data source, versions...)."""
        path.write_text(json.dumps({**dataclasses.asdict(self), "runtime": runtime},
                                   indent=2) + "\n")

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> Config:
        """Defaults, then the named preset's values, then the given settings (explicit flags)."""
        preset = settings.get("preset", "report")
        if preset not in PRESETS:
            raise ConfigError(f"no preset {preset!r}; choose one of {', '.join(sorted(PRESETS))}")
        if "epochs" in settings and settings.get("budget_minutes") is not None:
            raise ConfigError("epochs and budget_minutes both set the run's length; give one")
        return cls(**{**PRESETS[preset], **settings})

    def differences(self, other: Config) -> dict[str, tuple[Any, Any]]:
        """Fields whose values differ: name -> (this value, the other's)."""
        mine, theirs = dataclasses.asdict(self), dataclasses.asdict(other)
        return {k: (v, theirs[k]) for k, v in mine.items() if theirs[k] != v}

    @classmethod
    def load(cls, path: Path) -> Config:
        """The settings of a config.json; unknown keys (the runtime block, old fields) are
        ignored."""
        saved = read_saved(path)
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in saved.items() if k in names})
        except (ConfigError, TypeError) as error:
            raise ConfigError(f"{path}: {error}") from None


def read_saved(path: Path) -> dict[str, Any]:
    """A config.json as saved: the settings and the runtime block; ConfigError if unreadable."""
    try:
        saved = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path} cannot be read as a run's config ({error})") from None
    if not isinstance(saved, dict):
        raise ConfigError(f"{path} holds no settings (a JSON object is expected)")
    return saved


IMAGE_SIZE = 32
# What --resume may change; every other setting is the run's own (its config.json).
RESUMABLE_CHANGES = ("epochs", "data_dir")
# The fields that take one of a few values, and those values (the fields' own).
CHOICES = {f.name: f.metadata["choices"] for f in dataclasses.fields(Config)
           if "choices" in f.metadata}


def _between(config: Config, name: str, low: float, high: float, closed: str = "[)") -> str | None:
    """A message if the field is outside the interval (closed tells which ends belong to it)."""
    value = getattr(config, name)
    inside = ((value >= low) if closed[0] == "[" else (value > low)) and (
        (value <= high) if closed[1] == "]" else (value < high))
    if inside:
        return None
    if high == float("inf"):
        return (f"{name} must be {'above' if closed[0] == '(' else 'at least'} {low:g}, "
                f"not {value!r}")
    return f"{name} must be in {closed[0]}{low:g}, {high:g}{closed[1]}, not {value!r}"


def _at_least(config: Config, name: str, low: int) -> str | None:
    value = getattr(config, name)
    return (None if value is None or value >= low
            else f"{name} must be at least {low}, not {value!r}")


# What each annotation of a Config field admits; a bool is no number here, though Python's bool
# is an int, and a float field takes an integer (JSON writes 1.0 as 1 in other tools).
_KINDS = {"str": ((str,), "a string"), "bool": ((bool,), "true or false"),
          "int": ((int,), "an integer"), "float": ((int, float), "a finite number")}


def _wrong_type(config: Config, field: dataclasses.Field) -> str | None:
    """A message if the field's value is not of its annotated type (config.json is read as
    JSON: "epochs": "ten" must be named, not fail later in a comparison)."""
    value = getattr(config, field.name)
    kind, _, optional = str(field.type).partition(" | ")
    if value is None and optional == "None":
        return None
    types, words = _KINDS[kind]
    right = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if right and kind == "float":
        right = math.isfinite(value)
    return None if right else f"{field.name} must be {words}, not {value!r}"


def _problems(config: Config):
    """Every check of a Config, lazily: the first message that is not None is the error."""
    for field in dataclasses.fields(config):
        yield _wrong_type(config, field)
    for name, choices in CHOICES.items():
        if getattr(config, name) not in choices:
            yield f"{name} must be one of {', '.join(choices)}, not {getattr(config, name)!r}"
    yield _between(config, "conv_dropout", 0, 1)
    yield _between(config, "fc_dropout", 0, 1)
    yield _between(config, "learning_rate", 0, float("inf"), "(]")
    yield _between(config, "momentum", 0, 1)
    yield _between(config, "weight_decay", 0, float("inf"))
    yield _between(config, "label_smoothing", 0, 1)
    yield _between(config, "decay_factor", 0, 1, "()")
    yield _between(config, "warmup_epochs", 0, float("inf"))
    if config.budget_minutes is not None:
        yield _between(config, "budget_minutes", 0, float("inf"), "()")
    for name in ("batch_size", "epochs", "val_size", "limit"):
        yield _at_least(config, name, 1)
    for name in ("patience", "early_stop", "seed", "translate", "cutout", "tensorboard"):
        yield _at_least(config, name, 0)
    # A shift of the whole image or a Cutout larger than it would blank every image.
    yield _between(config, "translate", 0, IMAGE_SIZE, "[)")
    yield _between(config, "cutout", 0, IMAGE_SIZE, "[]")
    if config.schedule == "cosine" and config.warmup_epochs >= config.epochs:
        yield (f"warmup_epochs ({config.warmup_epochs:g}) must be fewer than epochs "
               f"({config.epochs}): shorten the warm-up or train longer")
