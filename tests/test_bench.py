"""The benchmark (benchmarks/, tools/bench.py): the FLOP count, the epochs' commands and their
alternating order, the paired ratios and the targets, the matmul's fresh inputs, skipping bf16
where it is emulated, the plain Keras script's augmentation, and one short run end to end."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import ROOT, run_script

import benchmarks.table
import cli
from benchmarks import epochs, plain_keras, suite, timing, workloads
from benchmarks.epochs import EpochJob
from benchmarks.table import fmt
from benchmarks.timing import Row, Settings
from data import DataError
from models.network import build_model

# 2 * H * W * k * k * C_in * C_out for the convs, 2 * n_in * n_out for the dense layers.
REPORT_FLOPS = {"CONV1": 2 * 32 * 32 * 9 * 3 * 64, "CONV2": 2 * 16 * 16 * 9 * 64 * 128,
                "CONV3": 2 * 8 * 8 * 9 * 128 * 256, "CONV4": 2 * 8 * 8 * 9 * 256 * 256,
                "FC1": 2 * 4096 * 1024, "FC2": 2 * 1024 * 1024, "SOFTMAX": 2 * 1024 * 10}
TRAIN, FP32, BF16 = (EpochJob("train.py", "bf16"), EpochJob("plain Keras", "fp32"),
                     EpochJob("plain Keras", "bf16"))


@pytest.fixture(scope="module")
def bench():
    """tools/bench.py, the command line, loaded from its path (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench", ROOT / "tools" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_layer_flops_of_the_report_network():
    flops = workloads.layer_flops(build_model())
    assert flops == REPORT_FLOPS
    assert sum(flops.values()) == 165_040_128  # 0.165 GFLOP forward, 0.495 GFLOP to train


def test_layer_flops_ignore_batchnorm_and_dropout():
    model = build_model(batchnorm="all", conv_dropout=0, fc_dropout=0)
    assert workloads.layer_flops(model) == REPORT_FLOPS


def test_stats_are_median_min_max_and_the_samples_in_order():
    assert timing.stats([3.0, 1.0, 10.0, 2.0]) == {"median": 2.5, "min": 1.0, "max": 10.0,
                                                   "reps": 4, "samples": [3.0, 1.0, 10.0, 2.0]}


def test_timed_stops_at_the_budget_after_two_repetitions():
    calls = []
    seconds = timing.timed(lambda: calls.append(1), Settings(reps=5, budget=0.0))
    assert len(seconds) == 2 and len(calls) == 3  # one warm-up call, then 2 timed ones
    assert len(timing.timed(lambda: None, Settings(reps=4, budget=1e9))) == 4
    assert len(timing.timed(lambda: None, Settings(reps=1, budget=1e9))) == 1


def test_a_failed_measurement_becomes_a_note():
    row = timing.guarded(Row("training", "t", "fp32", "images/s"), lambda: 1 / 0)
    assert row.median is None and row.note == "failed: ZeroDivisionError: division by zero"


# ---------------------------------------------------------------------------------------------
# The epochs


def test_the_jobs_alternate_repetition_by_repetition():
    assert epochs.order([TRAIN, FP32, BF16], 2) == [(0, TRAIN), (0, FP32), (0, BF16),
                                                     (1, TRAIN), (1, FP32), (1, BF16)]


def test_run_epochs_runs_in_that_order_and_a_failed_job_is_not_restarted(monkeypatch):
    started = []

    def fake_run(job, data_dir, sizes, limit):
        started.append(job.label)
        if job is FP32:
            raise RuntimeError("plain Keras fp32: out of memory")
        return {"epoch_seconds": 10.0, "process_seconds": 12.0}

    monkeypatch.setattr(epochs, "run_job", fake_run)
    records = epochs.run_epochs([TRAIN, FP32, BF16], 2, "D", {}, None)
    assert started == ["train.py bf16", "plain Keras fp32", "plain Keras bf16",
                       "train.py bf16", "plain Keras bf16"]
    assert records[1] == {"rep": 0, "job": "plain Keras", "precision": "fp32",
                          "error": "plain Keras fp32: out of memory"}
    assert records[4] == {"rep": 1, "job": "plain Keras", "precision": "fp32"}
    assert records[5] == {"rep": 1, "job": "plain Keras", "precision": "bf16",
                          "epoch_seconds": 10.0, "process_seconds": 12.0}
    rows = suite.epoch_rows(FP32, records)
    assert [r.note for r in rows] == ["failed: plain Keras fp32: out of memory"] * 2
    assert rows[0].median is None


def test_the_commands_are_a_users_at_full_size(tmp_path):
    full = {"train": 45_000, "val": 5_000, "test": 10_000, "full_size": True}
    python = epochs.sys.executable
    assert epochs.command(TRAIN, "D", full, None, tmp_path) == [
        python, str(ROOT / "train.py"), "--data-dir", "D", "--epochs", "1", "--precision", "bf16",
        "--out", str(tmp_path), "--run", "bench", "--tensorboard", "0", "--verbose", "0"]
    assert epochs.command(FP32, "D", full, None, tmp_path) == [
        python, "-m", "benchmarks.plain_keras", "--data-dir", "D", "--precision", "fp32",
        "--train-images", "45000", "--val-images", "5000"]
    short = {"train": 200, "val": 50, "test": 100, "full_size": False}
    assert epochs.command(TRAIN, None, short, 200, tmp_path)[2:] == [
        "--epochs", "1", "--precision", "bf16", "--out", str(tmp_path), "--run", "bench",
        "--tensorboard", "0", "--verbose", "0", "--val-size", "50", "--limit", "200"]


def test_epoch_sizes_on_the_tiny_copy(tiny_cifar):
    assert epochs.epoch_sizes(str(tiny_cifar), 200, 50) == {
        "train": 200, "val": 50, "test": 100, "full_size": False}
    assert epochs.epoch_sizes(str(tiny_cifar), None, 50)["train"] == 250
    with pytest.raises(DataError) as error:
        epochs.epoch_sizes(str(tiny_cifar), 251, 50)
    assert str(error.value) == ("--train-images 251 is more than the 250 training images "
                                "--val-images 50 leaves")


def records_of(seconds: dict[EpochJob, list[float]], key: str = "epoch_seconds") -> list[dict]:
    """Made-up records in the order run_epochs writes them."""
    reps = len(next(iter(seconds.values())))
    return [{"rep": rep, "job": job.name, "precision": job.precision, key: values[rep]}
            for rep in range(reps) for job, values in seconds.items()]


def test_the_paired_ratio_is_the_ratio_of_medians_with_the_pairs_min_and_max():
    records = records_of({TRAIN: [40.0, 50.0, 45.0], FP32: [100.0, 110.0, 90.0]})
    # medians 100 / 45; pairs 100/40, 110/50, 90/45
    assert suite.paired_ratio(records, FP32, TRAIN) == {"value": 100 / 45, "min": 2.0,
                                                        "max": 2.5, "pairs": 3}
    assert suite.paired_ratio(records, BF16, TRAIN) is None
    assert suite.paired_ratio(records, FP32, TRAIN, "process_seconds") is None


def made_up_rows() -> list[Row]:
    def row(group, name, precision, samples, unit="x"):
        return Row(group, name, precision, unit, **timing.stats(samples))

    return [row("epoch", "train.py --epochs 1: the epoch", "bf16", [40.0, 50.0, 45.0]),
            row("roofline", "matmul 1024x1024 (fresh inputs)", "fp32", [100.0]),
            row("roofline", "matmul 2048x2048 (fresh inputs)", "fp32", [200.0]),
            row("roofline", "matmul 1024x1024 (fresh inputs)", "bf16", [500.0]),
            row("training", "step only (train.py's model, cached batch)", "bf16",
                [600.0, 800.0, 1000.0]),
            row("inference", "evaluate.py predict", "fp32", [1000.0])]


def test_mfu_is_against_the_best_matmul_in_the_steps_precision():
    rows = made_up_rows()
    check = suite.annotate(rows, train_flops=500_000_000)
    assert rows[4].mfu == 800 * 0.5 / 500  # 400 GFLOP/s of 500
    assert rows[5].mfu is None
    assert check == {"bf16_over_fp32": 2.5, "plausible": False,
                     "note": "bf16/fp32 = 2.50 > 2: above what AVX512-BF16 can do over fp32 "
                             "FMAs; suspect the measurement"}
    assert rows[3].note == check["note"] and rows[1].note == ""


def test_a_bf16_matmul_at_most_twice_fp32_passes_the_check():
    rows = made_up_rows()
    rows[3] = Row("roofline", "m", "bf16", "x", median=390.0)
    assert suite.annotate(rows, 500_000_000) == {"bf16_over_fp32": 1.95, "plausible": True,
                                                 "note": ""}
    assert suite.annotate(rows[:3], 500_000_000) is None  # no bf16 matmul: nothing to check


def test_targets_from_made_up_rows():
    rows = made_up_rows()
    suite.annotate(rows, train_flops=500_000_000)
    records = records_of({TRAIN: [40.0, 50.0, 45.0], FP32: [100.0, 110.0, 90.0],
                          BF16: [60.0, 70.0, 50.0]})
    pairs = suite.ratios(records, "bf16")
    baselines = {"fp32": "", "bf16": ""}
    got = suite.targets(rows, pairs, full_size=True, full_matmul=True, baselines=baselines)
    assert got["epoch_seconds"] == {"value": 45.0, "goal": 30.0, "better": "lower", "met": False,
                                    "min": 40.0, "max": 50.0, "comparable": True, "note": ""}
    assert got["vs_plain_keras_fp32"] == {"value": 100 / 45, "goal": 2.5, "better": "higher",
                                          "met": False, "min": 2.0, "max": 2.5,
                                          "comparable": True, "note": ""}
    # medians 60 / 45; pairs 60/40, 70/50, 50/45
    bf16 = got["vs_plain_keras_bf16"]
    assert (bf16["value"], bf16["min"], bf16["max"], bf16["met"]) == (60 / 45, 50 / 45, 1.5,
                                                                      False)
    assert got["step_vs_matmul"] == {"value": 0.8, "goal": 0.8, "better": "higher", "met": True,
                                     "min": 0.6, "max": 1.0, "comparable": True, "note": ""}
    short = suite.targets(rows, pairs, full_size=False, full_matmul=False, baselines=baselines)
    assert all(t["met"] is None and not t["comparable"] for t in short.values())


def test_a_skipped_baseline_is_a_target_not_measured():
    records = records_of({TRAIN: [20.0], FP32: [60.0]})
    pairs = suite.ratios(records, "bf16")
    assert pairs["vs_plain_keras_fp32"]["epoch"]["value"] == 3.0
    assert pairs["vs_plain_keras_bf16"] == {"epoch": None, "process": None}
    rows = [Row("epoch", "train.py --epochs 1: the epoch", "bf16", "s", **timing.stats([20.0])),
            Row("training", "step only", "bf16", "images/s")]
    got = suite.targets(rows, pairs, full_size=True, full_matmul=True,
                        baselines={"fp32": "", "bf16": suite.BF16_EMULATED})
    assert got["epoch_seconds"]["met"] and got["vs_plain_keras_fp32"]["met"]
    assert got["vs_plain_keras_bf16"] == {"value": None, "goal": 1.5, "better": "higher",
                                          "met": None, "min": None, "max": None,
                                          "comparable": True, "note": suite.BF16_EMULATED}
    assert got["step_vs_matmul"]["value"] is None and got["step_vs_matmul"]["met"] is None


# ---------------------------------------------------------------------------------------------
# Precisions and the command line


@pytest.mark.parametrize("native", [False, True])
def test_bf16_is_skipped_without_bf16_instructions_unless_forced(monkeypatch, native):
    monkeypatch.setattr(suite, "has_gpu", lambda: False)
    monkeypatch.setattr(suite, "cpu_has_bf16", lambda: native)
    plan = suite.baseline_precisions()
    assert plan == {"fp32": "", "bf16": "" if native else suite.BF16_EMULATED}
    assert suite.BF16_EMULATED.startswith("skipped: this CPU has no AVX512-BF16 or AMX")
    assert suite.epoch_jobs("fp32", plan) == [EpochJob("train.py", "fp32"), FP32,
                                              *([BF16] if native else [])]
    assert suite.baseline_precisions(["fp32", "bf16"]) == {"fp32": "", "bf16": ""}
    assert suite.baseline_precisions(["bf16"]) == {"fp32": "skipped: not in --precisions",
                                                   "bf16": ""}


def test_bad_flags_are_one_line_usage_errors(bench):
    with pytest.raises(cli.UsageError) as error:
        bench.forced_precisions("fp32,fp64")
    assert str(error.value) == ("--precisions takes fp32 and/or bf16 separated by commas, not "
                                "'fp32,fp64'")
    assert bench.forced_precisions(" fp32 , bf16") == ["fp32", "bf16"]
    assert bench.forced_precisions(None) is None
    for flags in (["--reps", "0"], ["--train-images", "0"], ["--val-images", "-1"]):
        with pytest.raises(cli.UsageError) as error:
            bench.settings_from(bench.parse_args(flags))
        assert str(error.value) == "--reps, --train-images and --val-images must be at least 1"
    quick = bench.settings_from(bench.parse_args(["--quick", "--train-images", "900"]))
    assert (quick.reps, quick.matmul_sizes, quick.train_images, quick.val_images) == (
        3, (1024,), 900, 5000)


# ---------------------------------------------------------------------------------------------
# The matmul's fresh inputs


def test_the_input_pool_is_distinct_pairs_filling_the_bytes_asked():
    pool = workloads.input_pool(64, "fp32", pool_bytes=10 * 2 * 64 * 64 * 4 + 1)
    assert len(pool) == 11  # 10 pairs of 32 KiB fall 1 byte short
    arrays = [x.numpy().tobytes() for pair in pool for x in pair]
    assert len(set(arrays)) == 22
    assert pool[0][0].dtype.name == "float32"
    assert len(workloads.input_pool(64, "bf16", pool_bytes=1)) == 2


def test_every_matmul_call_takes_the_next_pair_of_the_pool(monkeypatch):
    seen = []

    def product():
        def record(a, b):
            seen.append((id(a), id(b)))
            return workloads.tf.constant(0.0)
        return record

    monkeypatch.setattr(workloads, "matmul_product", product)
    rates = workloads.matmul_rates("fp32", 32, Settings(reps=2, budget=0.0),
                                   pool_bytes=4 * 2 * 32 * 32 * 4)
    assert len(rates) == 2 and min(rates) > 0
    cycle = seen[:4]
    assert len(set(cycle)) == 4 and len(seen) % 4 == 0
    assert seen == cycle * (len(seen) // 4)  # round and round the same 4 distinct pairs


def test_last_level_cache_is_the_largest_listed(tmp_path):
    for index, size in (("index0", "48K"), ("index2", "1024K"), ("index3", "32768K")):
        (tmp_path / index).mkdir()
        (tmp_path / index / "size").write_text(size + "\n")
    assert workloads.last_level_cache(tmp_path) == 32 * 2**20
    assert workloads.last_level_cache(tmp_path / "none") == workloads.CACHE_FALLBACK


# ---------------------------------------------------------------------------------------------
# The plain Keras script and the whole run


def test_the_plain_scripts_augmentation_shifts_by_at_most_4_pixels_and_flips_half():
    images = np.zeros((100, 32, 32, 3), np.uint8)
    images[:, :, :16] = 255  # left half white: a flip makes column 8 black
    x, y = next(iter(plain_keras.augmented_batches(images, np.arange(100))))
    x = x.numpy()
    assert x.shape == (100, 32, 32, 3) and x.dtype == np.float32
    assert sorted(y.numpy()) == list(range(100))
    flipped = x[:, 16, 8, 0] == 0
    assert 20 < flipped.sum() < 80
    assert (x[~flipped, 4:28, 4:12] > 254.5).all()  # never shifted by more than 4 pixels
    assert (x[~flipped, :, 0] == 0).any()  # zeros fill what a shift brings in


@pytest.mark.slow
def test_a_short_run_end_to_end(tiny_cifar, tmp_path):
    path = tmp_path / "b.json"
    result = run_script("tools/bench.py", "--data-dir", str(tiny_cifar), "--train-images", "200",
                        "--val-images", "50", "--reps", "1", "--quick", "--precisions", "fp32",
                        "--json", str(path), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads(path.read_text())
    assert saved["epoch_sizes"] == {"train": 200, "val": 50, "test": 100, "full_size": False}
    train, plain = saved["epoch_runs"]  # train.py first, then the plain script
    assert (train["job"], plain["job"], plain["precision"]) == ("train.py", "plain Keras", "fp32")
    assert train["train_images"] == plain["train_images"] == 200
    assert plain["parameters"] == 6_216_114
    for run in (train, plain):
        assert 0 < run["epoch_seconds"] < run["process_seconds"]
    assert set(saved["targets"]) == {"epoch_seconds", "vs_plain_keras_fp32",
                                     "vs_plain_keras_bf16", "step_vs_matmul"}
    for t in saved["targets"].values():
        assert not t["comparable"] and t["met"] is None
    assert saved["targets"]["epoch_seconds"]["value"] == train["epoch_seconds"]
    fp32 = saved["targets"]["vs_plain_keras_fp32"]
    assert fp32["value"] == fp32["min"] == plain["epoch_seconds"] / train["epoch_seconds"]
    assert saved["targets"]["vs_plain_keras_bf16"]["note"] == "skipped: not in --precisions"
    measured = [r for r in saved["rows"] if r["median"] is not None]
    assert {r["group"] for r in measured} == {"epoch", "roofline", "training", "inference",
                                              "analysis"}
    assert all(r["median"] > 0 for r in measured)
    table = result.stdout
    assert "(NOT the full 45,000 / 5,000 / 10,000: the targets are not comparable)" in table
    assert "target vs_plain_keras_fp32: " in table and f"wrote {path}" in table
    for r in measured:
        assert any(line.startswith(r["name"]) and fmt(r["median"]) in line
                   for line in table.splitlines()), r["name"]


def test_the_plain_network_is_the_report_network_in_keras_own_layers():
    keras.mixed_precision.set_global_policy("float32")
    plain, ours = plain_keras.report_network(), build_model()
    assert plain.count_params() == ours.count_params() == 6_216_114
    assert [w.shape for w in plain.weights] == [w.shape for w in ours.weights]
    plain.set_weights(ours.get_weights())
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(plain.predict_on_batch(images), ours.predict_on_batch(images),
                               rtol=1e-5, atol=1e-6)
    dropouts = [type(layer) for layer in plain.layers if "dropout" in layer.name]
    assert dropouts == [keras.layers.Dropout] * 6


def half_then_full_disk(monkeypatch) -> None:
    """Path.write_text writes the first half of its text, then fails as a full disk does."""
    import errno

    def write_text(self, text, *args, **kwargs):
        with open(self, "w") as f:
            f.write(text[: len(text) // 2])
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_text", write_text)


def test_a_failed_write_of_bench_json_leaves_the_old_one_whole(bench, tmp_path, monkeypatch):
    path = tmp_path / "bench.json"
    path.write_text('{"old": true}\n')
    monkeypatch.setattr(suite, "run_benchmark", lambda *args: {"new": list(range(99))})
    monkeypatch.setattr(benchmarks.table, "table", lambda result: "the table")
    half_then_full_disk(monkeypatch)
    with pytest.raises(OSError, match="No space left on device"):
        bench.main(["--json", str(path), "--precision", "fp32"])
    assert path.read_text() == '{"old": true}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]
