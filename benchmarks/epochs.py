"""The whole-epoch figures: train.py and the plain Keras script (benchmarks/plain_keras.py), one
epoch each in its own process, as a user starts them, repetition after repetition in alternating
order, so that a machine that slows down over the run slows every job alike."""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import runs
from benchmarks.timing import FULL_SIZES
from data.cifar10 import DataError, load_cifar10, split_validation
from models import Config

ROOT = Path(__file__).resolve().parent.parent
RUN_NAME = "bench"


@dataclasses.dataclass(frozen=True)
class EpochJob:
    """One of the processes timed: train.py, or the plain Keras script, in a precision."""

    name: str  # "train.py" or "plain Keras"
    precision: str

    @property
    def label(self) -> str:
        return f"{self.name} {self.precision}"


def epoch_sizes(data_dir: str | None, train_images: int | None, val_images: int) -> dict:
    """The epoch's image counts on this copy of the data: train (the first train_images of what
    validation leaves), val and test; full_size where they are train.py's 45,000 / 5,000 /
    10,000. Asking for more training images than there are is a DataError."""
    data = load_cifar10(data_dir)
    (x_train, _), (x_val, _) = split_validation(data.x_train, data.y_train, val_images)
    if train_images is not None and train_images > len(x_train):
        raise DataError(f"--train-images {train_images:,} is more than the {len(x_train):,} "
                         f"training images --val-images {val_images:,} leaves")
    sizes = {"train": train_images or len(x_train), "val": len(x_val), "test": len(data.x_test)}
    return {**sizes, "full_size": sizes == FULL_SIZES}


def order(jobs: list[EpochJob], reps: int) -> list[tuple[int, EpochJob]]:
    """(repetition, job) in the order they run: every job once, then every job again."""
    return [(rep, job) for rep in range(reps) for job in jobs]


def command(job: EpochJob, data_dir: str | None, sizes: dict, limit: int | None,
            out: Path) -> list[str]:
    """The job's command line: train.py for one epoch without TensorBoard or progress output
    (--limit and --val-size only where they differ from a user's run), or the plain Keras
    script, on the same images."""
    data = ["--data-dir", data_dir] if data_dir else []
    if job.name == "train.py":
        val = [] if sizes["val"] == Config().val_size else ["--val-size", str(sizes["val"])]
        return [sys.executable, str(ROOT / "train.py"), *data, "--epochs", "1", "--precision",
                job.precision, "--out", str(out), "--run", RUN_NAME, "--tensorboard", "0",
                "--verbose", "0", *val, *(["--limit", str(limit)] if limit else [])]
    return [sys.executable, "-m", "benchmarks.plain_keras", *data, "--precision", job.precision,
            "--train-images", str(sizes["train"]), "--val-images", str(sizes["val"])]


def reported(job: EpochJob, stdout: str, out: Path) -> dict:
    """What the process reports of its epoch: its own seconds (train.py's history.csv `seconds`,
    the plain script's JSON line) and test accuracy, with the training images it counted."""
    if job.name == "train.py":
        row = runs.read_history(out / RUN_NAME)[0]
        return {"epoch_seconds": row["seconds"], "test_accuracy": row["test_accuracy"],
                "train_images": runs.read_runtime(out / RUN_NAME)["train_images"]}
    line = next(ln for ln in reversed(stdout.splitlines()) if ln.startswith('{"plain_keras"'))
    report = json.loads(line)["plain_keras"]
    return {k: report[k] for k in ("epoch_seconds", "test_accuracy", "train_images",
                                   "parameters")}


def run_job(job: EpochJob, data_dir: str | None, sizes: dict, limit: int | None) -> dict:
    """One process of the job: what it reports (reported()), its whole wall time and its CPU
    seconds (user and system, of the process and its threads)."""
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        args = command(job, data_dir, sizes, limit, Path(folder))
        done = subprocess.run(args, cwd=ROOT, text=True, capture_output=True,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
            raise RuntimeError(f"{job.label}: {lines[-1]}")
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        return {**reported(job, done.stdout, Path(folder)), "process_seconds": wall,
                "cpu_seconds": cpu}


def run_epochs(jobs: list[EpochJob], reps: int, data_dir: str | None, sizes: dict,
               limit: int | None = None, progress=lambda: None) -> list[dict]:
    """Every job reps times in order(); one record per process (rep, job, precision, seconds or
    the error). A job that failed once is not started again."""
    records, failed = [], set()
    for rep, job in order(jobs, reps):
        record = {"rep": rep, "job": job.name, "precision": job.precision}
        if job.label not in failed:
            try:
                record.update(run_job(job, data_dir, sizes, limit))
            except Exception as error:  # the other jobs still run; the row says what failed
                failed.add(job.label)
                record["error"] = str(error)
        records.append(record)
        progress()
    return records
