"""Stopping a run on SIGTERM (a scheduler's preemption) or Ctrl-C without a half-done write.

Inside stop_on_signals() either signal raises Stopped in the main thread at once, except while a
deferred() block runs (an epoch's commit): there it waits for the block to end, so that the epoch
is either committed whole or not at all. A write that a signal interrupts outside such a block is
abandoned by runs.files.atomic_save, which removes its temporary file.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(BaseException):
    """A signal stopped the run. A BaseException, as KeyboardInterrupt is, so that no `except
    Exception` on the way up (Keras', TensorFlow's) swallows it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        """The shell's status for a process a signal ended: 130 for Ctrl-C, 143 for SIGTERM."""
        return 128 + self.signum


class _Deferral:
    depth = 0
    pending: int | None = None


def _handle(signum: int, frame) -> None:
    if _Deferral.depth:
        _Deferral.pending = signum
        return
    raise Stopped(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise Stopped inside the block; the previous handlers come back after.
    Main thread only, as Python's signal handlers are."""
    previous = {signum: signal.signal(signum, _handle) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A signal that comes inside the block stops the run only once the block has ended
    (and never if the block itself fails: its error goes on instead)."""
    _Deferral.depth += 1
    try:
        yield
    except BaseException:
        if _Deferral.depth == 1:
            _Deferral.pending = None
        raise
    finally:
        _Deferral.depth -= 1
    if not _Deferral.depth and _Deferral.pending is not None:
        signum, _Deferral.pending = _Deferral.pending, None
        raise Stopped(signum)
