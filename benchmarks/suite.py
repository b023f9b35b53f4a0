"""The whole benchmark: which figures to measure on this machine, measuring them, and what they
add up to (train.py's speed-up over the plain Keras script, MFU against the matmul limit, the
speed targets)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import keras
import tensorflow as tf
from tqdm import tqdm

from benchmarks.epochs import EpochJob, epoch_sizes, run_epochs
from benchmarks.timing import CIFAR_TEST, Row, Settings, guarded, stats
from benchmarks.workloads import (
    SCAN_LAYER,
    inference_rates,
    layer_flops,
    matmul_rates,
    scan_rates,
    step_only,
)
from data.cifar10 import resolve_source
from models.network import build_model
from training.devices import cpu_has_bf16, has_gpu

Job = tuple[Row, Callable[[], list[float]] | None]
BASELINES = ("fp32", "bf16")
BF16_EMULATED = ("skipped: this CPU has no AVX512-BF16 or AMX, so bf16 is emulated, several times "
                 "slower than fp32 (--precisions fp32,bf16 runs it anyway)")
NAMES = {"train.py": "train.py --epochs 1", "plain Keras": "plain Keras script"}
GOALS = {"epoch_seconds": 30.0, "vs_plain_keras_fp32": 2.5, "vs_plain_keras_bf16": 1.5,
         "step_vs_matmul": 0.8}
MAX_BF16_OVER_FP32 = 2.0  # AVX512-BF16's dot product does twice the FLOPs of an fp32 FMA


def baseline_precisions(forced: list[str] | None = None) -> dict[str, str]:
    """Each precision of the plain Keras baseline: "" where it is measured, else why not. bf16 is
    measured where the machine computes it natively (AVX512-BF16 or AMX, or a GPU), or where
    forced lists it; forced lists exactly the precisions to measure."""
    if forced is not None:
        return {p: "" if p in forced else "skipped: not in --precisions" for p in BASELINES}
    return {"fp32": "", "bf16": "" if has_gpu() or cpu_has_bf16() else BF16_EMULATED}


def epoch_jobs(precision: str, baselines: dict[str, str]) -> list[EpochJob]:
    """train.py in its precision, then the plain script in each measured precision."""
    return [EpochJob("train.py", precision),
            *(EpochJob("plain Keras", p) for p, skip in baselines.items() if not skip)]


def epoch_rows(job: EpochJob, records: list[dict], note: str = "") -> list[Row]:
    """The job's epoch seconds and whole-process seconds over its repetitions; note (the
    skip or size note) unless a repetition failed."""
    mine = [r for r in records if (r["job"], r["precision"]) == (job.name, job.precision)]
    errors = [r["error"] for r in mine if "error" in r]
    rows = []
    for key, what in (("epoch_seconds", "the epoch"), ("process_seconds", "whole process")):
        row = Row("epoch", f"{NAMES[job.name]}: {what}", job.precision, "seconds",
                  note=f"failed: {errors[0]}" if errors else note)
        samples = [r[key] for r in mine if key in r]
        if samples:
            row.__dict__.update(stats(samples))
        rows.append(row)
    return rows


def paired_ratio(records: list[dict], baseline: EpochJob, path: EpochJob,
                 key: str = "epoch_seconds") -> dict | None:
    """How many times faster path runs than baseline: the ratio of their medians, with the min
    and max of the per-repetition ratios (each repetition's baseline seconds over the same
    repetition's path seconds); None without a repetition that measured both."""
    by_rep: dict[int, dict[tuple[str, str], float]] = {}
    for r in records:
        if key in r:
            by_rep.setdefault(r["rep"], {})[r["job"], r["precision"]] = r[key]
    b, p = (baseline.name, baseline.precision), (path.name, path.precision)
    pairs = [secs[b] / secs[p] for secs in by_rep.values() if b in secs and p in secs]
    if not pairs:
        return None
    medians = [statistics.median(s[j] for s in by_rep.values() if j in s) for j in (b, p)]
    return {"value": medians[0] / medians[1], "min": min(pairs), "max": max(pairs),
            "pairs": len(pairs)}


def ratios(records: list[dict], precision: str) -> dict:
    """train.py against each plain Keras precision, by the epoch's own seconds ("epoch") and by
    the whole process's ("process")."""
    path = EpochJob("train.py", precision)
    return {f"vs_plain_keras_{p}": {
        "epoch": paired_ratio(records, EpochJob("plain Keras", p), path, "epoch_seconds"),
        "process": paired_ratio(records, EpochJob("plain Keras", p), path, "process_seconds")}
        for p in BASELINES}


def target(value: float | None, goal: float, *, lower_is_better: bool = False,
           low: float | None = None, high: float | None = None, comparable: bool = True,
           note: str = "") -> dict:
    """A target's entry in bench.json: met is None where there is no value or the run is not
    comparable with the goal (a shortened epoch, shortened matmul sizes)."""
    met = None
    if value is not None and comparable:
        met = value <= goal if lower_is_better else value >= goal
    return {"value": value, "goal": goal, "better": "lower" if lower_is_better else "higher",
            "met": met, "min": low, "max": high, "comparable": comparable, "note": note}


def targets(rows: list[Row], pairs: dict, *, full_size: bool, full_matmul: bool,
            baselines: dict[str, str]) -> dict:
    """The four speed targets: train.py's epoch seconds, its speed-up over the plain fp32 and
    bf16 scripts (paired, by the epoch's seconds) and the step's MFU against the matmul."""
    epoch = next(r for r in rows if r.name == f"{NAMES['train.py']}: the epoch")
    out = {"epoch_seconds": target(epoch.median, GOALS["epoch_seconds"], lower_is_better=True,
                                   low=epoch.min, high=epoch.max, comparable=full_size)}
    for p in BASELINES:
        name, ratio = f"vs_plain_keras_{p}", pairs[f"vs_plain_keras_{p}"]["epoch"] or {}
        out[name] = target(ratio.get("value"), GOALS[name], low=ratio.get("min"),
                           high=ratio.get("max"), comparable=full_size, note=baselines[p])
    step = next(r for r in rows if r.group == "training")
    spread = [step.mfu * x / step.median for x in (step.min, step.max)] if step.mfu else [None] * 2
    out["step_vs_matmul"] = target(step.mfu, GOALS["step_vs_matmul"], low=spread[0],
                                   high=spread[1], comparable=full_matmul)
    return out


def roofline(rows: list[Row]) -> dict[str, float]:
    """The best matmul median (FLOP/s) of each precision measured."""
    best: dict[str, float] = {}
    for r in rows:
        if r.group == "roofline" and r.median:
            best[r.precision] = max(best.get(r.precision, 0.0), r.median * 1e9)
    return best


def annotate(rows: list[Row], train_flops: int) -> dict | None:
    """MFU of the training step against the best matmul in its precision; the bf16/fp32 matmul
    check (a note on the best bf16 row where bf16 is more than twice fp32), returned."""
    best = roofline(rows)
    for r in rows:
        if r.group == "training" and r.median and best.get(r.precision):
            r.mfu = r.median * train_flops / best[r.precision]
    if not {"fp32", "bf16"} <= set(best):
        return None
    ratio = best["bf16"] / best["fp32"]
    check = {"bf16_over_fp32": ratio, "plausible": ratio <= MAX_BF16_OVER_FP32, "note": ""}
    if not check["plausible"]:
        check["note"] = (f"bf16/fp32 = {ratio:.2f} > {MAX_BF16_OVER_FP32:.0f}: above what "
                         "AVX512-BF16 can do over fp32 FMAs; suspect the measurement")
        top = max((r for r in rows if r.group == "roofline" and r.precision == "bf16"
                   and r.median), key=lambda r: r.median)
        top.note = check["note"]
    return check


def in_process_jobs(precision: str, matmul: dict[str, str], s: Settings, seed: int) -> list[Job]:
    """The matmul limit in each precision (skipped ones as one row with the reason), the step
    alone in train.py's precision, inference and the neurons scan, in table order."""
    jobs: list[Job] = []
    for p, skip in matmul.items():
        if skip:
            jobs.append((Row("roofline", "matmul (fresh inputs)", p, "GFLOP/s", note=skip), None))
            continue
        jobs += [(Row("roofline", f"matmul {n}x{n} (fresh inputs)", p, "GFLOP/s"),
                  lambda p=p, n=n: [r / 1e9 for r in matmul_rates(p, n, s)])
                 for n in s.matmul_sizes]
    jobs.append((Row("training", "step only (train.py's model, cached batch)", precision,
                     "images/s"), lambda: step_only(precision, s, seed)))
    jobs += [(Row("inference", "evaluate.py predict", p, "images/s"),
              lambda p=p: inference_rates(p, s, seed)) for p in dict.fromkeys(("fp32", precision))]
    jobs.append((Row("analysis", f"neurons.py scan ({SCAN_LAYER}, {CIFAR_TEST:,} images)", "fp32",
                     "seconds"), lambda: [CIFAR_TEST / r for r in scan_rates(s, seed)]))
    return jobs


def run_benchmark(s: Settings, precision: str, baselines: dict[str, str],
                  data_dir: str | None = None, seed: int = 0, progress: bool = True) -> dict:
    """Measure everything: the epochs first (in other processes, this one idle), then the
    figures in this process; returns the JSON-ready result."""
    started, load_before = time.time(), os.getloadavg()
    source = resolve_source(data_dir)
    if source:  # the processes start in the repository root, not in the caller's folder
        source = str(Path(source).expanduser().resolve())
    sizes = epoch_sizes(source, s.train_images, s.val_images)
    jobs = epoch_jobs(precision, baselines)
    work = in_process_jobs(precision, {**baselines, precision: ""}, s, seed)
    with tqdm(total=s.reps * len(jobs) + len(work), desc="bench", unit="figure",
              disable=not progress) as bar:
        records = run_epochs(jobs, s.reps, source, sizes, s.train_images, bar.update)
        rows = []
        for row, measure in work:
            rows.append(guarded(row, measure))
            bar.update()
    size_note = "" if sizes["full_size"] else "not full size"
    epochs = epoch_rows(jobs[0], records, size_note)
    for p, skip in baselines.items():
        epochs += epoch_rows(EpochJob("plain Keras", p), records, skip or size_note)
    return {"settings": dataclasses.asdict(s), "seed": seed, "data_source": source,
            "precision": precision, "baselines": baselines, "epoch_sizes": sizes,
            "epoch_runs": records,
            **summary(epochs + rows, records, sizes, s, precision, baselines),
            "machine": machine_info(),
            "load_average": {"before": load_before, "after": os.getloadavg()},
            "seconds": time.time() - started}


def summary(rows: list[Row], records: list[dict], sizes: dict, s: Settings, precision: str,
            baselines: dict[str, str]) -> dict:
    """What the rows add up to: the FLOPs per image, the step's MFU, the matmul check, the paired
    ratios and the targets; the rows themselves, JSON-ready."""
    keras.mixed_precision.set_global_policy("float32")
    flops = layer_flops(build_model())
    forward = sum(flops.values())
    check = annotate(rows, 3 * forward)
    pairs = ratios(records, precision)
    return {"ratios": pairs, "matmul_check": check,
            "flops_per_image": {"layers_forward": flops, "forward": forward,
                                "training": 3 * forward},
            "rows": [dataclasses.asdict(r) for r in rows],
            "targets": targets(rows, pairs, full_size=sizes["full_size"],
                               full_matmul=s.matmul_sizes == Settings.matmul_sizes,
                               baselines=baselines)}


def machine_info() -> dict:
    """The CPU, its cores and bf16 support, the GPUs and the versions that produced the figures."""
    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "bf16_instructions": cpu_has_bf16(), "gpus": [], "tensorflow": tf.__version__,
            "keras": keras.__version__}
    with contextlib.suppress(OSError):
        cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
        names = [ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")]
        info["cpu"] = names[0] if names else info["cpu"]
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        info["gpus"].append(details.get("device_name", gpu.name))
    return info
