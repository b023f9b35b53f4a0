"""What every script shares on the command line: run-folder names and one-line errors."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

LOGS = Path(__file__).resolve().parent.parent / "logs"


class UserError(Exception):
    """Bad input from the user: printed as one line, exit status 2, no traceback."""


def run_folder(name_or_path: str) -> Path:
    """A run is named (logs/NAME) or given as a path to its folder."""
    path = Path(name_or_path)
    if path.exists():
        return path
    if (LOGS / name_or_path).exists():
        return LOGS / name_or_path
    raise UserError(f"no run folder {name_or_path!r} (looked for it as a path and in {LOGS})")


def main_with_errors(main: Callable[[], None]) -> None:
    """Run a script's main(); bad input and interrupts end with one line, not a traceback."""
    from data import DataError

    try:
        main()
    except (UserError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
