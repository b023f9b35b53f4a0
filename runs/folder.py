"""Names and formats of a run folder's files, and reading them back."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import math
import os
import zipfile
from pathlib import Path

import numpy as np

from models.config import Config, read_saved
from runs.files import TEMPORARY, atomic_write_text, sha256

LOGS = Path(__file__).resolve().parent.parent / "logs"
CONFIG = "config.json"
HISTORY = "history.csv"
TRAIN_LOG = "train.log"  # what train.py printed, appended to across resumes
# weights, optimizer and schedule state: the commit point of an epoch
CHECKPOINT = "checkpoint.keras"
WEIGHTS = {"best": "best.weights.h5", "last": "last.weights.h5"}
EVAL = "eval"
FIGURES = "figures"
TENSORBOARD = "tensorboard"  # event files, where the run's config asks for them
# stored inside checkpoint.keras, so weights and state commit together
STATE_ENTRY = "run_state.json"
# held (flock) by the training that writes the folder, with its pid inside
LOCK = ".lock"
# an epoch's weights wait under this prefix until its checkpoint commits them (staged_name)
STAGED = ".staged-"
HISTORY_COLUMNS = ("epoch", "learning_rate", "train_loss", "train_accuracy", "val_loss",
                   "val_accuracy", "test_loss", "test_accuracy", "seconds")


class RunError(ValueError):
    """A run folder is missing, busy, or one of its files is absent or unreadable."""


class Claim:
    """This process's hold on a run folder: an exclusive flock on RUN/.lock, with the pid in it.

    While a training holds it, no other training writes the folder, so its staged weights cannot
    collide between processes, and runs.recover may delete the temporary files of training's own
    names it finds (runs.files.atomic_save's ".tmp-PID-RANDOM-NAME"): they are a dead
    process's. The kernel drops the lock when the process dies, even by kill -9, so a
    killed run never leaves its folder locked. Use it as a context manager, or call release().
    """

    def __init__(self, folder: Path, fd: int, created: bool):
        self.folder, self.created = folder, created
        self.fd: int | None = fd

    def release(self) -> None:
        """Unlock and remove RUN/.lock; a folder this claim made and nothing was written into is
        removed too, so that a run that failed before it started leaves nothing behind."""
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            (self.folder / LOCK).unlink()
        os.close(self.fd)
        self.fd = None
        if self.created:
            with contextlib.suppress(OSError):  # not empty: the run wrote something, keep it
                self.folder.rmdir()

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def claim_folder(folder: Path) -> Claim:
    """Claim the run folder OUT/NAME for this process, making it where need be; RunError naming
    the folder and the holder's pid where another process holds it."""
    folder = Path(folder)
    while True:
        created = not folder.is_dir()
        folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):  # a releasing holder removed it meanwhile
            return _lock(folder, created)


def claim_new_folder(out: Path, name: str) -> Claim:
    """Claim a new folder OUT/NAME, else OUT/NAME-2, NAME-3...: mkdir either makes a folder or
    fails, never both for two processes, so two runs named by the same second get two folders."""
    Path(out).mkdir(parents=True, exist_ok=True)
    number = 1
    while True:
        folder = Path(out) / (name if number == 1 else f"{name}-{number}")
        try:
            folder.mkdir()
        except FileExistsError:
            number += 1
        else:
            return _lock(folder, created=True)


def _lock(folder: Path, created: bool) -> Claim:
    path = folder / LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            by = f" (pid {holder})" if holder.isdigit() else ""
            raise RunError(f"{folder} is in use by another training{by}; wait for it to end, "
                           f"or pass another --run") from None
        # A holder that released the lock meanwhile unlinked the file this fd opened: lock the
        # one that is there now, which a third process may be locking too.
        try:
            current = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return Claim(folder, fd, created)


def run_folder(out: Path, name: str) -> Path:
    """OUT/NAME, the folder of the run a training names: NAME is one plain folder name, as a
    name that climbs out ("../x"), is absolute or is "." would train outside OUT or into OUT
    itself, beside the other runs; RunError for those. A trailing slash (a shell's completion
    of the folder's name) is not part of the name."""
    separators = [sep for sep in (os.sep, os.altsep) if sep]
    plain = name.rstrip("".join(separators)) or name
    if (plain in ("", ".", "..") or any(sep in plain for sep in separators) or "\0" in plain):
        raise RunError(f"a run name is one folder name (the run goes into --out {out}), not "
                       f"{name!r}; pass --out for another place")
    return Path(out) / plain


def find_run(name_or_path: str | Path) -> Path:
    """A run is named (logs/NAME) or given as a path to its folder."""
    path = Path(name_or_path)
    if path.exists():
        return path
    if (LOGS / name_or_path).exists():
        return LOGS / name_or_path
    raise RunError(f"no run folder {str(name_or_path)!r} (looked for it as a path and in {LOGS})")


def read_config(folder: Path) -> Config | None:
    """The run's Config from its config.json, or None where the folder has none."""
    path = Path(folder) / CONFIG
    return Config.load(path) if path.exists() else None


def read_runtime(folder: Path) -> dict:
    """What config.json records of how the run started (command, versions...); {} without one."""
    path = Path(folder) / CONFIG
    return read_saved(path).get("runtime", {}) if path.exists() else {}


def read_history(folder: Path) -> list[dict]:
    """history.csv's rows, one per finished epoch: epoch an int, every other column a float.

    A file that is not what training writes (a renamed column, a value that is no number) is a
    RunError naming the file, the line and the problem, rather than a run with no epochs.
    """
    path = Path(folder) / HISTORY
    if not path.exists():
        return []
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None:
                raise RunError(f"{path} is empty: not even a header")
            missing = [c for c in HISTORY_COLUMNS if c not in reader.fieldnames]
            unknown = [c for c in reader.fieldnames if c not in HISTORY_COLUMNS]
            if missing or unknown:
                problems = ([f"lacks {', '.join(missing)}"] if missing else []) + (
                    [f"has {', '.join(unknown)}"] if unknown else [])
                raise RunError(f"{path}: the header {' and '.join(problems)}; training writes "
                               f"{','.join(HISTORY_COLUMNS)}")
            rows = [_history_row(path, reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise RunError(f"{path} cannot be read as a history ({error})") from None
    # Each epoch once and in order: a repeated row would count twice (minutes, epochs done).
    for line, (expected, row) in enumerate(zip(range(1, len(rows) + 1), rows, strict=True), 2):
        if row["epoch"] != expected:
            raise RunError(f"{path}, line {line}: epoch {row['epoch']} where epoch {expected} "
                           f"belongs (training writes each epoch once, in order)")
    config = read_config(folder)
    if config is not None and len(rows) > config.epochs:
        raise RunError(f"{path} holds {len(rows)} epochs, more than the {config.epochs} of the "
                       f"run's {CONFIG}")
    return rows


def _history_row(path: Path, line: int, row: dict) -> dict:
    if None in row:
        raise RunError(f"{path}, line {line}: more values than the header has columns")
    values = {}
    for column, text in row.items():
        if text is None:
            raise RunError(f"{path}, line {line}: no {column} value")
        try:
            values[column] = int(text) if column == "epoch" else float(text)
        except ValueError:
            kind = "a whole number" if column == "epoch" else "a number"
            raise RunError(f"{path}, line {line}: {column} is {text!r}, not {kind}") from None
    return values


def history_text(rows: list[dict]) -> str:
    """history.csv's text for the rows: a header of HISTORY_COLUMNS, then one line per epoch."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_history(path: Path, rows: list[dict]) -> None:
    Path(path).write_text(history_text(rows))


def append_log(folder: Path, line: str) -> None:
    """One line onto the run's train.log, which the first line makes; a resume adds to it."""
    with open(Path(folder) / TRAIN_LOG, "a", encoding="utf-8") as file:
        file.write(line + "\n")


def best_row(rows: list[dict]) -> dict:
    """The epoch of the best validation accuracy; the first one on ties, as training keeps it."""
    return max(rows, key=lambda row: (row["val_accuracy"], -row["epoch"]))


def model_bytes(model, *, optimizer: bool = False) -> int:
    """About the payload of a weights file of the model (with optimizer, of a checkpoint, which
    also holds the optimizer's variables): the bytes of the variables it stores."""
    trainer = getattr(model, "optimizer", None) if optimizer else None
    variables = [*model.weights, *(trainer.variables if trainer is not None else ())]
    return sum(math.prod(v.shape) * np.dtype(v.dtype).itemsize for v in variables)


def save_checkpoint(model, path: str, state: dict) -> None:
    """The model with its optimizer, and the run's state (epoch, history, schedule) inside it."""
    model.save(path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(STATE_ENTRY, json.dumps(state))


def read_checkpoint_state(path: Path) -> dict:
    """The run state save_checkpoint put into the checkpoint; RunError where it cannot be read."""
    cannot = "its run cannot be resumed"
    try:
        with zipfile.ZipFile(path) as archive:
            state = json.loads(archive.read(STATE_ENTRY))
    except FileNotFoundError:
        raise RunError(f"{path} does not exist") from None
    except KeyError:
        raise RunError(f"{path} holds no run state; {cannot}") from None
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunError(f"{path} is truncated or corrupt ({error}); {cannot}") from None
    if not isinstance(state, dict) or not isinstance(state.get("epoch"), int):
        raise RunError(f"{path} holds no run state (no epoch count); {cannot}")
    return state


def staged_name(epoch: int, which: str) -> str:
    """Where an epoch's "best" or "last" weights wait until its checkpoint commits them: hidden,
    with the .weights.h5 suffix Keras checks, and the epoch in the name, so that the files of an
    epoch a kill left uncommitted never pass for those of the epoch before."""
    return f"{STAGED}{epoch}-{WEIGHTS[which]}"


def publish_weights(folder: Path, state: dict) -> None:
    """Rename the staged weights the committed state names (state["staged"]: which -> staged
    name) to their final names; those renamed already are skipped, so it can be redone."""
    for which, name in state.get("staged", {}).items():
        staged = Path(folder) / name
        if staged.exists():
            os.replace(staged, Path(folder) / WEIGHTS[which])


def discard_staged(folder: Path, staged: dict[str, str]) -> None:
    """Delete the staged weights of an epoch whose commit failed (staged: which -> staged name),
    so that on a full disk they do not hold the room the next try needs; runs.recover deletes
    those a kill left."""
    for name in staged.values():
        with contextlib.suppress(FileNotFoundError):
            (Path(folder) / name).unlink()


def recover(folder: Path, state: dict | None) -> None:
    """Put the run folder in the state its checkpoint committed, after a kill: finish the writes
    the committed epoch names (history.csv, its staged weights) and delete what an uncommitted
    one left (staged weights, temporary files).

    state is the checkpoint's state, None where the run has none. Only the claim's holder may
    call it: the temporary and staged files of the folder are then its own or a dead process's.
    """
    folder = Path(folder)
    if state is not None and "history" in state:
        history = folder / HISTORY
        text = history_text(state["history"])
        if not history.exists() or history.read_bytes() != text.encode():
            atomic_write_text(history, text)
    if state is not None:
        publish_weights(folder, state)
    # Only training's own temporary files: another script may write its figures here.
    ours = (CONFIG, HISTORY, CHECKPOINT, *WEIGHTS.values())
    leftovers = [*folder.glob(f"{STAGED}*"),
                 *(path for name in ours for path in folder.glob(f"{TEMPORARY}*{name}"))]
    for leftover in leftovers:
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def epochs_done(folder: Path) -> int:
    """Epochs the run has finished: its checkpoint's count (history.csv is written after the
    checkpoint, so may lag), else history.csv's rows (published runs keep no checkpoint)."""
    checkpoint = Path(folder) / CHECKPOINT
    if checkpoint.exists():
        return int(read_checkpoint_state(checkpoint)["epoch"])
    return len(read_history(folder))


def eval_json(folder: Path, which: str, split: str) -> Path:
    """Where evaluate.py keeps the numbers of one weights file on one split."""
    return Path(folder) / EVAL / f"{which}-{split}.json"


def read_evaluation(folder: Path, which: str = "best", split: str = "test") -> dict | None:
    """evaluate.py's numbers for the run's `which` weights on split, None where it has not run.

    Numbers are only the weights' they name: a file whose weights_sha256 is not the weights
    file's (weights trained or copied in since) is stale, and it, a file that is no JSON object
    or one without accuracy and loss, is a RunError saying so. Where the weights file is absent
    (published seeds keep only their numbers) nothing can contradict it.
    """
    path = eval_json(folder, which, split)
    if not path.exists():
        return None
    again = f"run evaluate.py --run {folder} --which {which} --split {split} again"
    try:
        numbers = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunError(f"{path} cannot be read ({error}); {again}") from None
    lacking = ([key for key in ("accuracy", "loss", "weights_sha256") if key not in numbers]
               if isinstance(numbers, dict) else ["its numbers"])
    if lacking:
        raise RunError(f"{path} lacks {', '.join(lacking)}; {again}")
    weights = Path(folder) / WEIGHTS[which]
    if weights.exists() and sha256(weights) != numbers["weights_sha256"]:
        raise RunError(f"{path} is stale: it scored other weights than {weights}; {again}")
    return numbers
