"""bench.py: the FLOP count, the derived figures (MFU, speed-up, targets), the table, and one --quick run."""

import json

import pytest
from conftest import run_script

import bench
from models.cli import UserError
from models.network import build_model

# 2 * H * W * k * k * C_in * C_out for the convs, 2 * n_in * n_out for the dense layers.
REPORT_FLOPS = {"CONV1": 2 * 32 * 32 * 9 * 3 * 64, "CONV2": 2 * 16 * 16 * 9 * 64 * 128,
                "CONV3": 2 * 8 * 8 * 9 * 128 * 256, "CONV4": 2 * 8 * 8 * 9 * 256 * 256,
                "FC1": 2 * 4096 * 1024, "FC2": 2 * 1024 * 1024, "SOFTMAX": 2 * 1024 * 10}


def test_layer_flops_of_the_report_network():
    flops = bench.layer_flops(build_model())
    assert flops == REPORT_FLOPS
    assert sum(flops.values()) == 165_040_128  # 0.165 GFLOP forward, 0.495 GFLOP to train


def test_layer_flops_ignore_batchnorm_and_dropout():
    assert bench.layer_flops(build_model(batchnorm="all", conv_dropout=0, fc_dropout=0)) == REPORT_FLOPS


def test_stats_are_median_min_max():
    assert bench.stats([3.0, 1.0, 10.0, 2.0]) == {"median": 2.5, "min": 1.0, "max": 10.0, "reps": 4}


def test_timed_stops_at_the_budget_after_two_repetitions():
    calls = []
    settings = bench.Settings(reps=5, budget=0.0)
    seconds = bench.timed(lambda: calls.append(1), settings)
    assert len(seconds) == 2 and len(calls) == 3  # one warm-up call, then 2 timed ones
    assert len(bench.timed(lambda: None, bench.Settings(reps=4, budget=1e9))) == 4


def test_project_scales_each_phase_to_the_full_epoch():
    epoch = {"train": 2.0, "val": 0.1, "test": 0.4, "save": 1.5}
    sizes, full = {"train": 100, "val": 10, "test": 20}, {"train": 45_000, "val": 5_000, "test": 10_000}
    assert bench.project(epoch, sizes, full) == pytest.approx(900 + 50 + 200 + 1.5)


def fake_rows() -> list[bench.Row]:
    def row(group, name, precision, xla, median):
        return bench.Row(group, name, precision, xla, "x", median, median, median, 3)

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
    bench.annotate(rows, train_flops=500_000_000)
    by = {(r.name, r.precision, r.xla): r for r in rows}
    # The best fp32 matmul (200 GFLOP/s) is the roofline: 360 images/s x 0.5 GFLOP = 180 GFLOP/s = 90%.
    assert by["step only (cached batch)", "fp32", False].mfu == pytest.approx(0.9)
    assert by["step only (cached batch)", "bf16", False].mfu == pytest.approx(500 * 0.5 / 400)
    assert by["train.py path (make_dataset)", "bf16", False].vs_baseline == pytest.approx(3.5)
    assert by["train.py path (make_dataset)", "bf16", True].note == "35x slower than without XLA"
    assert by["train.py path (make_dataset)", "bf16", False].note == ""
    assert by["evaluate.py predict", "fp32", False].mfu is None


def test_targets_met_and_missed():
    rows = fake_rows()
    bench.annotate(rows, train_flops=500_000_000)
    got = bench.targets(rows, "bf16")
    assert got["speedup_vs_plain_keras"]["value"] == pytest.approx(3.5) and got["speedup_vs_plain_keras"]["met"]
    assert got["mfu_step_fp32"]["met"] and not got["mfu_step_bf16"]["met"]  # 90% and 62.5% of the matmul
    assert got["epoch_vs_step"]["value"] == pytest.approx(440 / 500) and not got["epoch_vs_step"]["met"]


def test_a_failed_measurement_becomes_a_note():
    row = bench.guarded(bench.Row("training", "t", "fp32", True, "images/s"), lambda: 1 / 0)
    assert row.median is None and row.note == "failed: ZeroDivisionError: division by zero"


def test_bad_settings_are_user_errors():
    with pytest.raises(UserError, match="--reps at least 2"):
        bench.settings_from(bench.parse_args(["--reps", "1"]))
    quick = bench.settings_from(bench.parse_args(["--quick", "--budget", "5"]))
    assert (quick.reps, quick.budget, quick.xla, quick.scan_images) == (3, 5.0, False, 500)


def expected_rows(precisions: list[str], default: str) -> set[tuple[str, str, bool | None]]:
    rows = {("plain Keras (numpy fit)", "fp32", False), ("whole epoch, projected to 45k/5k/10k", default, False),
            ("neurons.py scan (CONV4, 10,000 images)", "fp32", False)}
    for p in precisions:
        rows |= {("matmul 1024x1024", p, None), ("train.py path (make_dataset)", p, False),
                 ("train.py path (make_dataset)", p, True), ("step only (cached batch)", p, False)}
    return rows | {("evaluate.py predict", p, False) for p in ("fp32", default)}


def test_quick_run_is_complete_and_positive(tmp_path):
    path = tmp_path / "b.json"
    result = run_script("bench.py", "--quick", "--json", str(path))
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(path.read_text())
    rows = data["rows"]
    assert {(r["name"], r["precision"], r["xla"]) for r in rows} == expected_rows(
        bench.precisions(), data["default_precision"])
    for r in rows:
        if r["xla"] and r["note"].startswith("skipped"):
            assert r["median"] is None
            continue
        assert r["reps"] >= 2 and 0 < r["min"] <= r["median"] <= r["max"], r
        if r["group"] == "training":
            assert r["mfu"] > 0 and r["vs_baseline"] > 0, r
    assert data["flops_per_image"]["training"] == 3 * 165_040_128
    assert set(data["targets"]) >= {"speedup_vs_plain_keras", "mfu_step_fp32", "epoch_vs_step"}
    assert all(t["value"] > 0 and t["met"] == (t["value"] >= t["goal"]) for t in data["targets"].values())
    epoch = data["whole_epoch"]
    assert epoch["sizes"] == {"train": 900, "val": 100, "test": 200}  # 2% of 45,000 / 5,000 / 10,000
    assert all(set(e) == {"train", "val", "test", "save"} and min(e.values()) > 0 for e in epoch["epochs"])
    table = result.stdout
    for r in rows:
        line = next(line for line in table.splitlines()
                    if line.startswith(r["name"]) and f" {r['precision']} " in line
                    and line[46:51].strip() == {None: "-", True: "yes", False: "no"}[r["xla"]])
        assert ("skipped" in line) if r["median"] is None else (bench.fmt(r["median"]) in line)
    assert f"wrote {path}" in table

