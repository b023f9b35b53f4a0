"""Train the report's CIFAR-10 network from the shell; each run gets its own folder under logs/.

    python train.py --data-dir ../shared/data/cifar-10-jpeg --run report
    python train.py --run report --resume          # continue an interrupted run

The run folder holds config.json (every setting, data source, seed, versions), history.csv (one
row per epoch: learning rate, train/val/test loss and accuracy, seconds), train.log (the lines
printed here, added to by each resume), best.weights.h5 (best
validation accuracy), last.weights.h5, checkpoint.keras (weights, optimizer and schedule state,
for --resume) and tensorboard/ (event files). Every file is written atomically, and
checkpoint.keras commits each epoch, so a killed run loses at most the current epoch. One training
at a time writes a run folder. SIGTERM and Ctrl-C stop after the current epoch's files, and a
write the disk has no room for is refused before it starts, each in one line with the command
that continues the run. --resume takes the command that started the run again: a setting may be
repeated, but only --epochs (not for a cosine schedule) and --data-dir may change.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import shlex
import sys
from typing import TYPE_CHECKING

import cli
import runs
from cli.args import add_config_flags, parser
from cli.errors import os_error_text
from models.config import Config
from training.stopping import Stopped, stop_on_signals

if TYPE_CHECKING:
    from training.trainer import Run

CONFIG_FIELDS = {f.name for f in dataclasses.fields(Config)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return make_parser().parse_args(argv)


def make_parser() -> argparse.ArgumentParser:
    """Config flags are left out of the namespace unless given (SUPPRESS), so that a preset's
    values hold where no flag overrides them, and --resume knows what was asked."""
    p = parser(__doc__, argument_default=argparse.SUPPRESS)
    add = p.add_argument
    add("--run", default=None, help="run name: the folder OUT/NAME (default: the date and time)")
    add("--out", default=str(runs.LOGS), help="folder that holds run folders (default: logs/)")
    add("--resume", action="store_true", default=False,
        help="continue the run from its checkpoint")
    add("--dropout", type=float, help="dropout rate for conv and FC layers alike")
    add_config_flags(p)
    add("--cpu-devices", type=int, default=1,
        help="split the CPU into N logical devices (try --strategy mirrored without GPUs)")
    add("--verbose", type=int, default=1, choices=(0, 1, 2), help="Keras progress output")
    return p


def given_settings(args: argparse.Namespace) -> dict:
    """The Config fields the command sets explicitly; --dropout sets both rates, and the
    rate-specific flags win over it."""
    given = {k: v for k, v in vars(args).items() if k in CONFIG_FIELDS}
    if "dropout" in args:
        given = {"conv_dropout": args.dropout, "fc_dropout": args.dropout, **given}
    return given


def resume_command(run: Run) -> str:
    return shlex.join(["python", sys.argv[0], "--run", run.folder.name, "--out",
                       str(run.folder.parent), "--resume"])


def stopped_line(run: Run | None) -> str:
    """What a SIGTERM or Ctrl-C left, and the command that continues the run."""
    if run is None:
        return "stopped before training started; run the same command again"
    if not run.state["epoch"]:
        return ("stopped before the first epoch finished: nothing to resume; run the same "
                "command again")
    return (f"stopped at epoch {run.state['epoch']} of {run.config.epochs}; "
            f"continue with: {resume_command(run)}")


def failed_write_line(error: OSError, run: Run | None) -> str:
    """A failed write (a full disk) in one line, with the resume command if epochs are saved."""
    done = 0
    with contextlib.suppress(runs.RunError):
        done = runs.epochs_done(run.folder) if run is not None and run.chief else 0
    if not done:  # nothing to resume, and maybe no run yet (a folder that cannot be made)
        return f"error: {os_error_text(error)}"
    saved = "epoch 1 is" if done == 1 else f"epochs 1..{done} are"
    return (f"error: {os_error_text(error)}; {saved} saved; once that is fixed, continue with: "
            f"{resume_command(run)}")


def main() -> None:
    args = parse_args()
    if args.resume and not args.run:
        raise cli.UsageError("--resume continues a named run: pass --run NAME (and its --out)")
    if not args.resume:  # a bad setting is refused before TensorFlow loads, as a bad flag is
        Config.from_settings(given_settings(args))
    cli.start_quietly()  # after the flags: --help and a bad flag answer before TensorFlow loads
    from training.trainer import prepare_run, train

    run = None
    with stop_on_signals():
        try:
            run = prepare_run(given_settings(args), out=args.out, name=args.run,
                              resume=args.resume)
            with run:
                train(run, cpu_devices=args.cpu_devices, verbose=args.verbose,
                      command=" ".join(sys.argv))
        except Stopped as stop:
            print(stopped_line(run), file=sys.stderr)
            sys.exit(stop.exit_status)
        except OSError as error:
            print(failed_write_line(error, run), file=sys.stderr)
            sys.exit(2)


if __name__ == "__main__":
    cli.main_with_errors(main)
