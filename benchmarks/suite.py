"""The whole benchmark: which figures to measure on this machine, measuring them, and what they
add up to (MFU against the matmul roofline, speed-up over plain Keras, the speed targets)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import keras
import tensorflow as tf
from tqdm import tqdm

from benchmarks.timing import CIFAR_TEST, Row, Settings, guarded
from benchmarks.workloads import (
    SCAN_LAYER,
    inference_rates,
    layer_flops,
    matmul_rates,
    plain_keras,
    scan_rates,
    step_only,
    train_path,
    whole_epoch,
)
from models import build_model
from training.devices import cpu_has_bf16, has_gpu, resolve_precision

Job = tuple[Row, Callable[[], list[float]] | None]


def precisions() -> list[str]:
    """fp32 always; bf16 where the CPU has bf16 instructions or on a GPU; fp16 on a GPU only."""
    if has_gpu():
        return ["fp32", "bf16", "fp16"]
    return ["fp32", "bf16"] if cpu_has_bf16() else ["fp32"]


def training_jobs(precs: list[str], default: str, s: Settings, seed: int,
                  epoch: dict) -> list[Job]:
    """Plain Keras, then per precision training's path without and with XLA and the step alone,
    then the whole epoch in the default precision (its details go into epoch)."""
    jobs: list[Job] = [(Row("training", "plain Keras (numpy fit)", "fp32", False, "images/s"),
                        lambda: plain_keras(s, seed))]
    for p in precs:
        for xla in (False, True):
            row = Row("training", "train.py path (make_dataset)", p, xla, "images/s")
            measured = s.xla or not xla
            row.note = "" if measured else "skipped (--quick or --no-xla)"
            jobs.append((row, (lambda p=p, xla=xla: train_path(p, xla, s, seed)) if measured
                         else None))
        jobs.append((Row("training", "step only (cached batch)", p, False, "images/s"),
                     lambda p=p: step_only(p, s, seed)))

    def measure_epoch() -> list[float]:
        epoch.update(whole_epoch(default, s, seed))
        return [epoch["full_sizes"]["train"] / t for t in epoch["projected_seconds"]]

    jobs.append((Row("training", "whole epoch, projected to 45k/5k/10k", default, False,
                     "images/s"), measure_epoch))
    return jobs


def all_jobs(precs: list[str], default: str, s: Settings, seed: int, epoch: dict) -> list[Job]:
    """The roofline, the training figures, inference and the neurons scan, in table order."""
    sizes = (4096, 8192) if has_gpu() and s.matmul_sizes == Settings.matmul_sizes \
        else s.matmul_sizes
    jobs: list[Job] = [(Row("roofline", f"matmul {n}x{n}", p, None, "GFLOP/s"),
                        lambda p=p, n=n: [r / 1e9 for r in matmul_rates(p, n, s)])
                       for p in precs for n in sizes]
    jobs += training_jobs(precs, default, s, seed, epoch)
    jobs += [(Row("inference", "evaluate.py predict", p, False, "images/s"),
              lambda p=p: inference_rates(p, s, seed)) for p in dict.fromkeys(("fp32", default))]
    jobs.append((Row("analysis", f"neurons.py scan ({SCAN_LAYER}, {CIFAR_TEST:,} images)", "fp32",
                     False, "seconds"), lambda: [CIFAR_TEST / r for r in scan_rates(s, seed)]))
    return jobs


def run_benchmark(s: Settings, seed: int = 0, progress: bool = True) -> dict:
    """Measure everything; returns the JSON-ready result (rows, FLOPs, machine, settings,
    targets)."""
    started, load_before = time.time(), os.getloadavg()
    keras.mixed_precision.set_global_policy("float32")
    flops = layer_flops(build_model())
    forward = sum(flops.values())
    default, epoch = resolve_precision("auto"), {}
    jobs = all_jobs(precisions(), default, s, seed, epoch)
    rows = [guarded(row, measure)
            for row, measure in tqdm(jobs, desc="bench", unit="figure", disable=not progress)]
    annotate(rows, 3 * forward)
    return {"settings": dataclasses.asdict(s), "seed": seed, "default_precision": default,
            "flops_per_image": {"layers_forward": flops, "forward": forward,
                                "training": 3 * forward},
            "rows": [dataclasses.asdict(r) for r in rows], "whole_epoch": epoch or None,
            "targets": targets(rows, default), "machine": machine_info(),
            "load_average": {"before": load_before, "after": os.getloadavg()},
            "seconds": time.time() - started}


def annotate(rows: list[Row], train_flops: int) -> None:
    """MFU against the best matmul median in the row's precision; speed-up over plain Keras; a
    note on XLA rows that run at under half the speed without XLA."""
    roofline: dict[str, float] = {}
    for r in rows:
        if r.group == "roofline" and r.median:
            roofline[r.precision] = max(roofline.get(r.precision, 0.0), r.median * 1e9)
    baseline = next((r.median for r in rows if r.name.startswith("plain Keras")), None)
    for r in rows:
        if r.group == "training" and r.median:
            if roofline.get(r.precision):
                r.mfu = r.median * train_flops / roofline[r.precision]
            if baseline:
                r.vs_baseline = r.median / baseline
        without = next((o for o in rows if r.xla and o.name == r.name
                        and o.precision == r.precision and o.xla is False and o.median), None)
        if without and r.median and r.median < without.median / 2:  # XLA's CPU kernels are slow
            r.note = f"{without.median / r.median:.0f}x slower than without XLA"


def targets(rows: list[Row], default: str) -> dict:
    """The speed targets: >= 3x plain Keras, MFU >= 80% of the matmul, whole epoch within 10% of
    the step."""

    def find(name: str, precision: str) -> Row | None:
        return next((r for r in rows if r.name.startswith(name) and r.precision == precision
                     and not r.xla), None)

    path, step = find("train.py path", default), find("step only", default)
    out = {"speedup_vs_plain_keras": {"precision": default, "value": path and path.vs_baseline,
                                      "goal": 3.0}}
    for p in ("fp32", "bf16"):
        r = find("step only", p)
        if r is not None:
            out[f"mfu_step_{p}"] = {"precision": p, "value": r.mfu, "goal": 0.8}
    whole = find("whole epoch", default)
    if whole and whole.median and step and step.median:
        out["epoch_vs_step"] = {"precision": default, "value": whole.median / step.median,
                                "goal": 0.9}
    for t in out.values():
        t["met"] = t["value"] is not None and t["value"] >= t["goal"]
    return out


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
