"""Bad input ends a script with one line and exit status 2, never a traceback."""

from __future__ import annotations

import re
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

    return UsageError, AnalysisError, ConfigError, DataError, EvaluationError, RunError


def main_with_errors(main: Callable[[], None]) -> None:
    """Run a script's main(); bad input and interrupts end with one line, not a traceback."""
    try:
        main()
    except library_errors() as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except OSError as error:  # a full disk, an unwritable or missing folder: the system's words
        print(f"error: {os_error_text(error)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def os_error_text(error: OSError) -> str:
    """The system's words for an OSError and the file it concerns, on one line: h5py's own
    message for a failed write spreads over several."""
    where = f": {error.filename}" if error.filename else ""
    return re.sub(r"\s*\n\s*", " ", f"{error.strerror or error}{where}").strip()
