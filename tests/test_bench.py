"""The benchmark (benchmarks/, tools/bench.py): the FLOP count, the derived figures (MFU,
speed-up, targets), the table, training's settings reaching the timed pipeline, and one --quick
run."""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import json

import pytest
from conftest import ROOT, run_script

import benchmarks
import cli
import data
from benchmarks import workloads
from models import Config
from models.network import build_model
from training.callbacks import EpochRecorder

# 2 * H * W * k * k * C_in * C_out for the convs, 2 * n_in * n_out for the dense layers.
REPORT_FLOPS = {"CONV1": 2 * 32 * 32 * 9 * 3 * 64, "CONV2": 2 * 16 * 16 * 9 * 64 * 128,
                "CONV3": 2 * 8 * 8 * 9 * 128 * 256, "CONV4": 2 * 8 * 8 * 9 * 256 * 256,
                "FC1": 2 * 4096 * 1024, "FC2": 2 * 1024 * 1024, "SOFTMAX": 2 * 1024 * 10}


@pytest.fixture(scope="module")
def bench():
    """tools/bench.py, the command line, loaded from its path (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench", ROOT / "tools" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_layer_flops_of_the_report_network():
    flops = benchmarks.layer_flops(build_model())
    assert flops == REPORT_FLOPS
    assert sum(flops.values()) == 165_040_128  # 0.165 GFLOP forward, 0.495 GFLOP to train


def test_layer_flops_ignore_batchnorm_and_dropout():
    model = build_model(batchnorm="all", conv_dropout=0, fc_dropout=0)
    assert benchmarks.layer_flops(model) == REPORT_FLOPS


def test_stats_are_median_min_max():
    assert benchmarks.stats([3.0, 1.0, 10.0, 2.0]) == {"median": 2.5, "min": 1.0, "max": 10.0,
                                                       "reps": 4}


def test_timed_stops_at_the_budget_after_two_repetitions():
    calls = []
    settings = benchmarks.Settings(reps=5, budget=0.0)
    seconds = benchmarks.timed(lambda: calls.append(1), settings)
    assert len(seconds) == 2 and len(calls) == 3  # one warm-up call, then 2 timed ones
    assert len(benchmarks.timed(lambda: None, benchmarks.Settings(reps=4, budget=1e9))) == 4


def test_project_scales_each_phase_to_the_full_epoch():
    epoch = {"train": 2.0, "val": 0.1, "test": 0.4, "save": 1.5}
    sizes = {"train": 100, "val": 10, "test": 20}
    full = {"train": 45_000, "val": 5_000, "test": 10_000}
    assert benchmarks.project(epoch, sizes, full) == pytest.approx(900 + 50 + 200 + 1.5)


def test_train_batches_pass_every_augmentation_setting(monkeypatch):
    """Every make_dataset option that is also a Config field comes from the run's Config, as in
    training (the training path once ignored cutout)."""
    seen = {}
    monkeypatch.setattr(workloads, "make_dataset", lambda *args, **kwargs: seen.update(kwargs))
    config = Config(batch_size=10, augment=True, translate=2, flip=False, cutout=8)
    workloads.train_batches(config, None, None, seed=3)
    shared = set(inspect.signature(data.make_dataset).parameters) & {
        f.name for f in dataclasses.fields(Config)}
    assert shared >= {"batch_size", "augment", "translate", "flip", "cutout"}
    # batch_size goes positionally; the seed is the benchmark's (a run adds its epoch to its own)
    for name in shared - {"batch_size", "seed"}:
        assert seen[name] == getattr(config, name), name
    assert seen["training"] is True and seen["seed"] == 3


def test_the_phase_marks_surround_trainings_test_evaluation(tmp_path):
    phases = workloads.Phases()
    callbacks = workloads.make_callbacks(Config(), folder=tmp_path, test_data=None,
                                         state={"epoch": 0, "history": []})
    timed = workloads.timed_callbacks(phases, callbacks)
    assert timed[0] is phases and isinstance(timed[1], EpochRecorder)
    assert isinstance(timed[2], workloads.Mark) and timed[2].phase == "test"
    assert timed[3:-1] == callbacks[1:]
    assert isinstance(timed[-1], workloads.Mark) and timed[-1].phase == "save"


def test_bench_config_is_the_report_run_at_the_benchmarks_batch_size():
    config = workloads.bench_config("bf16", benchmarks.Settings(batch_size=64), xla=True)
    assert config == Config(precision="bf16", batch_size=64, xla=True)


def fake_rows() -> list[benchmarks.Row]:
    def row(group, name, precision, xla, median):
        return benchmarks.Row(group, name, precision, xla, "x", median, median, median, 3)

    return [row("roofline", "matmul 1024x1024", "fp32", None, 100.0),
            row("roofline", "matmul 2048x2048", "fp32", None, 200.0),
            row("roofline", "matmul 1024x1024", "bf16", None, 400.0),
            row("training", "plain Keras (numpy fit)", "fp32", False, 100.0),
            row("training", "train.py path (make_dataset)", "bf16", False, 350.0),
            row("training", "train.py path (make_dataset)", "bf16", True, 10.0),
            row("training", "step only (cached batch)", "fp32", False, 360.0),
            row("training", "step only (cached batch)", "bf16", False, 500.0),
            row("training", "whole epoch, projected to 45k/5k/10k", "bf16", False, 440.0),
            row("inference", "evaluate.py predict", "fp32", False, 1000.0)]


def test_annotate_mfu_speedup_and_slow_xla():
    rows = fake_rows()
    benchmarks.annotate(rows, train_flops=500_000_000)
    by = {(r.name, r.precision, r.xla): r for r in rows}
    # The best fp32 matmul (200 GFLOP/s) is the roofline: 360 images/s x 0.5 GFLOP = 180 GFLOP/s.
    assert by["step only (cached batch)", "fp32", False].mfu == pytest.approx(0.9)
    assert by["step only (cached batch)", "bf16", False].mfu == pytest.approx(500 * 0.5 / 400)
    assert by["train.py path (make_dataset)", "bf16", False].vs_baseline == pytest.approx(3.5)
    assert by["train.py path (make_dataset)", "bf16", True].note == "35x slower than without XLA"
    assert by["train.py path (make_dataset)", "bf16", False].note == ""
    assert by["evaluate.py predict", "fp32", False].mfu is None


def test_targets_met_and_missed():
    rows = fake_rows()
    benchmarks.annotate(rows, train_flops=500_000_000)
    got = benchmarks.targets(rows, "bf16")
    speedup = got["speedup_vs_plain_keras"]
    assert speedup["value"] == pytest.approx(3.5) and speedup["met"]
    # 90% and 62.5% of the matmul
    assert got["mfu_step_fp32"]["met"] and not got["mfu_step_bf16"]["met"]
    assert got["epoch_vs_step"]["value"] == pytest.approx(440 / 500)
    assert not got["epoch_vs_step"]["met"]


def test_a_failed_measurement_becomes_a_note():
    row = benchmarks.guarded(benchmarks.Row("training", "t", "fp32", True, "images/s"),
                             lambda: 1 / 0)
    assert row.median is None and row.note == "failed: ZeroDivisionError: division by zero"


def test_bad_settings_are_usage_errors(bench):
    with pytest.raises(cli.UsageError) as error:
        bench.settings_from(bench.parse_args(["--reps", "1"]))
    assert str(error.value) == ("--batch-size must be at least 1, --reps at least 2 and --budget "
                                "positive")
    quick = bench.settings_from(bench.parse_args(["--quick", "--budget", "5"]))
    assert (quick.reps, quick.budget, quick.xla, quick.scan_images) == (3, 5.0, False, 500)


def expected_rows(precisions: list[str], default: str) -> set[tuple[str, str, bool | None]]:
    rows = {("plain Keras (numpy fit)", "fp32", False),
            ("whole epoch, projected to 45k/5k/10k", default, False),
            ("neurons.py scan (CONV4, 10,000 images)", "fp32", False)}
    for p in precisions:
        rows |= {("matmul 1024x1024", p, None), ("train.py path (make_dataset)", p, False),
                 ("train.py path (make_dataset)", p, True), ("step only (cached batch)", p, False)}
    return rows | {("evaluate.py predict", p, False) for p in ("fp32", default)}


@pytest.mark.slow
def test_quick_run_is_complete_and_positive(tmp_path):
    path = tmp_path / "b.json"
    result = run_script("tools/bench.py", "--quick", "--json", str(path), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads(path.read_text())
    rows = saved["rows"]
    assert {(r["name"], r["precision"], r["xla"]) for r in rows} == expected_rows(
        benchmarks.precisions(), saved["default_precision"])
    for r in rows:
        if r["xla"] and r["note"].startswith("skipped"):
            assert r["median"] is None
            continue
        assert r["reps"] >= 2 and 0 < r["min"] <= r["median"] <= r["max"], r
        if r["group"] == "training":
            assert r["mfu"] > 0 and r["vs_baseline"] > 0, r
    assert saved["flops_per_image"]["training"] == 3 * 165_040_128
    assert set(saved["targets"]) >= {"speedup_vs_plain_keras", "mfu_step_fp32", "epoch_vs_step"}
    assert all(t["value"] > 0 and t["met"] == (t["value"] >= t["goal"])
               for t in saved["targets"].values())
    epoch = saved["whole_epoch"]
    assert epoch["sizes"] == {"train": 900, "val": 100, "test": 200}  # 2% of 45k / 5k / 10k
    assert all(set(e) == {"train", "val", "test", "save"} and min(e.values()) > 0
               for e in epoch["epochs"])
    table = result.stdout
    for r in rows:
        line = next(line for line in table.splitlines()
                    if line.startswith(r["name"]) and f" {r['precision']} " in line
                    and line[46:51].strip() == {None: "-", True: "yes", False: "no"}[r["xla"]])
        assert ("skipped" in line) if r["median"] is None else (benchmarks.fmt(r["median"]) in line)
    assert f"wrote {path}" in table
