"""Atomic writes: a crash or a kill never leaves half a file under its final name."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path


def atomic_save(path: Path, save: Callable[[str], None]) -> None:
    """save(tmp) into a temporary file beside path, then rename it to path.

    The temporary name keeps path's suffixes, because Keras checks them (".weights.h5", ".keras").
    A save that fails (a full disk, an unwritable folder) leaves neither the temporary file nor a
    changed path behind, and its error goes on to the caller.
    """
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}")
    try:
        save(str(tmp))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_save(path, lambda tmp: Path(tmp).write_text(text))
