"""The command-line layer every script shares: a quiet TensorFlow start, the common flags and
one-line errors. Libraries raise their own errors; only this layer turns them into `error: ...`
and exit status 2.
"""

from cli.errors import UsageError, main_with_errors
from cli.quiet import check_backend, start_quietly

__all__ = ["UsageError", "check_backend", "main_with_errors", "start_quietly"]
