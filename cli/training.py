"""train.py's command line: its flags (one per Config field), the run it starts or resumes, and
the one line it ends with on a signal or a failed write. study.py runs the same command for each
run of a study, each in a process of its own (run_in_child)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import multiprocessing
import shlex
import sys
from typing import TYPE_CHECKING

import runs
from cli.args import add_config_flags, parser
from cli.errors import UsageError, main_with_errors, os_error_text
from cli.quiet import start_quietly
from models.config import Config
from training.stopping import Stopped, stop_on_signals

if TYPE_CHECKING:
    from training.trainer import Run

CONFIG_FIELDS = {f.name for f in dataclasses.fields(Config)}


def echo(line: str) -> None:
    """Print a run's line at once, so that its output follows its epochs even when piped."""
    print(line, flush=True)


def make_parser(doc: str | None = None, prog: str = "train.py") -> argparse.ArgumentParser:
    """train.py's flags, doc its --help. Config flags are left out of the namespace unless
    given (SUPPRESS), so that a preset's values hold where no flag overrides them, and --resume
    knows what was asked."""
    p = parser(doc, argument_default=argparse.SUPPRESS, prog=prog)
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


def resume_command(run: Run, prog: str = "train.py") -> str:
    return shlex.join(["python", prog, "--run", run.folder.name, "--out",
                       str(run.folder.parent), "--resume"])


def stopped_line(run: Run | None, prog: str = "train.py") -> str:
    """What a SIGTERM or Ctrl-C left, and the command that continues the run."""
    if run is None:
        return "stopped before training started; run the same command again"
    if not run.state["epoch"]:
        return ("stopped before the first epoch finished: nothing to resume; run the same "
                "command again")
    return (f"stopped at epoch {run.state['epoch']} of {run.config.epochs}; "
            f"continue with: {resume_command(run, prog)}")


def failed_write_line(error: OSError, run: Run | None, prog: str = "train.py") -> str:
    """A failed write (a full disk) in one line, with the resume command if epochs are saved."""
    done = 0
    with contextlib.suppress(runs.RunError):
        done = runs.epochs_done(run.folder) if run is not None and run.chief else 0
    if not done:  # nothing to resume, and maybe no run yet (a folder that cannot be made)
        return f"error: {os_error_text(error)}"
    saved = "epoch 1 is" if done == 1 else f"epochs 1..{done} are"
    return (f"error: {os_error_text(error)}; {saved} saved; once that is fixed, continue with: "
            f"{resume_command(run, prog)}")


def train_main(argv: list[str], *, doc: str | None = None, prog: str = "train.py") -> None:
    """train.py with the arguments argv: a run started or resumed, trained, and on a signal or a
    failed write one line with the command that continues it (prog is how it was called)."""
    args = make_parser(doc, prog).parse_args(argv)
    if args.resume and not args.run:
        raise UsageError("--resume continues a named run: pass --run NAME (and its --out)")
    settings = given_settings(args)
    if not args.resume:  # a bad setting is refused before TensorFlow loads, as a bad flag is
        Config.from_settings(settings)
    start_quietly()  # after the flags: --help and a bad flag answer before TensorFlow loads
    from training.trainer import prepare_run, train

    run = None
    with stop_on_signals():
        try:
            run = prepare_run(settings, out=args.out, name=args.run, resume=args.resume)
            with run:
                train(run, cpu_devices=args.cpu_devices, verbose=args.verbose,
                      command=" ".join([prog, *argv]), log=echo)
        except Stopped as stop:
            print(stopped_line(run, prog), file=sys.stderr)
            sys.exit(stop.exit_status)
        except OSError as error:
            print(failed_write_line(error, run, prog), file=sys.stderr)
            sys.exit(2)


def run_in_child(argv: list[str]) -> int:
    """train.py's command with argv, in a process of its own (its memory back to the system when
    it ends, its signals handled as train.py handles them); returns its exit status. Should this
    process be stopped meanwhile, the child gets a SIGTERM first: it commits its epoch and ends.
    The child starts afresh (spawn) in this working folder, so a relative --out means here what
    it means to the planner."""
    child = multiprocessing.get_context("spawn").Process(target=_train_main_with_errors,
                                                         args=(argv,))
    child.start()
    try:
        child.join()
    except BaseException:
        child.terminate()
        child.join()
        raise
    return child.exitcode


def _train_main_with_errors(argv: list[str]) -> None:
    main_with_errors(lambda: train_main(argv))
