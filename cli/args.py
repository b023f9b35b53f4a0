"""Flags that mean the same in every script."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import runs
from data import SPLITS
from models.config import Config, flag_name

if TYPE_CHECKING:  # analysis.inputs loads Keras: the scripts build these after their flags
    from analysis.inputs import NeuronQuery, RunImages

DATA_DIR_HELP = ("CIFAR-10 folder or tar.gz (default: $CIFAR10_DIR, else the copy the run trained "
                 "on, else Keras' download)")


def at_least(minimum: int):
    """An argparse type: an integer no smaller than minimum, else argparse's one-line error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return parse


def number_list(what: str):
    """An argparse type: integers separated by commas ("3,17,40"), else a one-line error."""

    def parse(text: str) -> list[int]:
        try:
            picked = [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            picked = []
        if not picked:
            raise argparse.ArgumentTypeError(
                f"takes {what} separated by commas, e.g. 3,17,40 (not {text!r})")
        return picked

    return parse


channel_list = number_list("channel numbers")  # --neurons


class Parser(argparse.ArgumentParser):
    """argparse's parser, but a bad flag is one line, as every other error of the scripts is,
    pointing at --help instead of printing the whole usage first."""

    def error(self, message: str):
        self.exit(2, f"error: {message}; see {self.prog} --help\n")


def parser(doc: str | None, **options) -> Parser:
    """The parser of a script whose --help starts with doc, its module docstring."""
    return Parser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter,
                  **options)


# What a Config field's annotation makes its flag parse.
_TYPES = {"int": int, "float": float, "str": str}


def add_config_flags(p: argparse.ArgumentParser, config_type: type[Config] = Config) -> None:
    """One flag per Config field, named, typed, checked and explained by the field itself
    (models.config.setting): --conv-dropout for conv_dropout; a switch for a bool field
    (--no-flip where it defaults to on, --xla where off). Each says the default Config's value;
    the parser's default leaves a field out of the namespace unless its flag is given."""
    defaults = config_type()
    for field in dataclasses.fields(config_type):
        meta, default = field.metadata, getattr(defaults, field.name)
        if isinstance(default, bool):  # the switch that turns the default over
            p.add_argument(flag_name(field.name, not default), dest=field.name,
                           action="store_false" if default else "store_true", help=meta["help"])
            continue
        shown = "none" if default is None else f"{default:g}" if isinstance(default, float) \
            else default
        p.add_argument(flag_name(field.name), *meta.get("aliases", ()), dest=field.name,
                       type=_TYPES[str(field.type).partition(" | ")[0]],
                       choices=meta.get("choices"), metavar=meta.get("metavar"),
                       help=meta["help"] if "default" in meta["help"]
                       else f"{meta['help']} (default: {shown})")


def add_weights_and_split_arguments(p: argparse.ArgumentParser, batch_size: int) -> None:
    """Which weights of a run and which CIFAR-10 images, as evaluate.py and the analyses take
    them."""
    p.add_argument("--which", choices=tuple(runs.WEIGHTS), default="best",
                   help="the run's best-on-validation or last weights (default: best)")
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.add_argument("--split", choices=SPLITS, default="test",
                   help="CIFAR-10 split (default: test; val and train cut as training cut them)")
    p.add_argument("--batch-size", type=at_least(1), default=batch_size,
                   help=f"images per forward pass (default: {batch_size})")


def add_run_arguments(p: argparse.ArgumentParser, images: int | None = None,
                      batch_size: int = 250, what: str = "figures") -> None:
    """The analysis scripts' shared flags: which run and weights, which images, where to write."""
    p.add_argument("--run", required=True, help="run name under logs/ or a path to a run folder")
    add_weights_and_split_arguments(p, batch_size)
    p.add_argument("--images", type=at_least(1), default=images,
                   help=f"the first N images of the split (default: {images or 'all'})")
    p.add_argument("--out",
                   help=f"folder this script writes its {what} into (default: RUN/figures)")


def add_neuron_arguments(p: argparse.ArgumentParser, what: str = "show") -> None:
    """Which neurons of --layer: by hand (--neurons), else the --count purest by their top -k."""
    p.add_argument("--layer", default="CONV4", help="conv or pool layer (default: CONV4)")
    p.add_argument("-k", "--k", type=at_least(1), default=9,
                   help="top images per neuron (default: 9)")
    p.add_argument("--neurons", type=channel_list,
                   help=f"channels to {what}, e.g. 3,17,40 (default: the purest)")
    p.add_argument("--count", type=at_least(1), default=10,
                   help="how many neurons to choose automatically (default: 10)")


def output_folder(args: argparse.Namespace) -> Path:
    """--out, else the run folder's figures/."""
    return Path(args.out) if args.out else runs.find_run(args.run) / runs.FIGURES


def print_written(paths: list[Path]) -> None:
    for path in paths:
        print(f"wrote {path}")


def run_images(args: argparse.Namespace) -> RunImages:
    """add_run_arguments' values: what the analysis reads."""
    from analysis.inputs import RunImages

    return RunImages(args.run, which=args.which, data_dir=args.data_dir, split=args.split,
                     images=args.images, batch_size=args.batch_size)


def neuron_query(args: argparse.Namespace) -> NeuronQuery:
    """add_neuron_arguments' values: which neurons the analysis shows."""
    from analysis.inputs import NeuronQuery

    return NeuronQuery(layer=args.layer, neurons=args.neurons, count=args.count, k=args.k)
