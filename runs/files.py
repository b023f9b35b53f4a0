"""Atomic writes: a crash or a kill never leaves half a file under its final name, and a write
the disk has no room for is refused before it starts."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

# The prefix of atomic_save's temporary names (runs.recover deletes training's own).
TEMPORARY = ".tmp-"
# What a file format adds to the bytes it stores (HDF5 and zip headers, the tables of contents):
# a file is taken to need its payload plus this share of it plus FORMAT_MARGIN_BYTES.
FORMAT_MARGIN = 0.05
FORMAT_MARGIN_BYTES = 1 << 20
NAME_MAX = 255  # the longest file name Linux and macOS file systems take


def atomic_save(path: Path, save: Callable[[str], None], *, size: int = 0) -> None:
    """save(tmp) into a temporary file beside path, then rename it to path.

    The temporary name keeps path's suffixes, because Keras checks them (".weights.h5", ".keras"),
    and holds the pid and a random part, so that two processes writing the same path (evaluate.py
    and an analysis script into one --out, which no claim guards) never share a temporary file:
    each write ends whole, the last one wins. A save that fails (a full disk, an unwritable
    folder) leaves neither the temporary file nor a changed path behind, and its error goes on to
    the caller.

    size is about how many bytes save writes (0: unknown). Where the disk has less free than that,
    the save is refused with OSError(ENOSPC) before anything is written: h5py, out of space in the
    middle of a file, can crash the whole process (a segfault) instead of raising.
    """
    path = Path(path)
    tmp = path.with_name(temporary_name(path.name))
    if size:
        check_free_space(path, size)
    try:
        save(str(tmp))
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            tmp.unlink()
        # The file the user asked for, not the temporary one, and not nothing (a writer that
        # writes into a file object names none).
        if isinstance(error, OSError) and error.filename in (None, str(tmp)):
            raise OSError(error.errno, error.strerror or str(error), str(path)) from error
        raise


def temporary_name(name: str) -> str:
    """".tmp-PID-RANDOM-NAME": hidden, unique to this process and this write, ending in NAME; a
    NAME too long to take the prefix loses characters at its start, never its suffixes. The
    limit is in bytes (a Japanese character takes three), as the file system counts."""
    prefix = f"{TEMPORARY}{os.getpid()}-{secrets.token_hex(4)}-"
    room = NAME_MAX - len(os.fsencode(prefix))
    while len(os.fsencode(name)) > room:
        name = name[1:]
    return prefix + name


def check_free_space(path: Path, size: int) -> None:
    """OSError(ENOSPC) naming path, where the disk that holds its folder has less room than a file
    of size bytes of payload needs (with FORMAT_MARGIN)."""
    needed = int(size * (1 + FORMAT_MARGIN)) + FORMAT_MARGIN_BYTES
    free = shutil.disk_usage(Path(path).parent).free
    if free < needed:
        raise OSError(errno.ENOSPC, f"No space left on device ({megabytes(needed)} needed, "
                                    f"{megabytes(free)} free)", str(path))


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def atomic_write_text(path: Path, text: str) -> None:
    atomic_save(path, lambda tmp: Path(tmp).write_text(text))


def sha256(path: Path) -> str:
    """The file's digest, so that a JSON of numbers names exactly the weights it scored."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
