"""Bad input ends a script with one line and exit status 2, never a traceback."""

from __future__ import annotations

import re
import signal
import sys
from collections.abc import Callable


class UsageError(Exception):
    """Bad command-line input that only the command line can see (flags that contradict)."""


def library_errors() -> tuple[type[Exception], ...]:
    """The error types the packages raise for bad input: each names what is wrong in one line."""
    from analysis import AnalysisError
    from data import DataError
    from evaluation import EvaluationError
    from models.config import ConfigError
    from runs import RunError

    return AnalysisError, ConfigError, DataError, EvaluationError, RunError


class Terminated(BaseException):
    """A SIGTERM, raised where the script is, so that a write in progress removes its temporary
    file (runs.atomic_save) instead of the process vanishing mid-write."""


def _terminate(signum, frame) -> None:
    raise Terminated


def main_with_errors(main: Callable[[], None]) -> None:
    """Run a script's main(); bad input and interrupts end with one line, not a traceback.
    train.py handles SIGTERM itself while it trains (training.stopping)."""
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        main()
    except SystemExit:  # --help, a bad flag: before library_errors imports the packages
        raise
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except library_errors() as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except OSError as error:  # a full disk, an unwritable or missing folder: the system's words
        print(f"error: {os_error_text(error)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Terminated:
        print("stopped by SIGTERM; no file is left half-written", file=sys.stderr)
        sys.exit(143)
    finally:
        signal.signal(signal.SIGTERM, previous)


def os_error_text(error: OSError) -> str:
    """The system's words for an OSError and the file it concerns, on one line: h5py's own
    message for a failed write spreads over several."""
    where = f": {error.filename}" if error.filename else ""
    return re.sub(r"\s*\n\s*", " ", f"{error.strerror or error}{where}").strip()
