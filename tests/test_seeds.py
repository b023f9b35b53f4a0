"""The seeds study (training.seeds, study.py seeds), its summary (reporting.seed_summary) and
minutes to accuracy (reporting.timing): exact numbers on hand-written history.csv files, the
plan on fake run folders, and study.py seeds end to end on the tiny data."""

from __future__ import annotations

import json
import math
import shlex
import zipfile
from pathlib import Path

import pytest
from conftest import run_script, write_evaluation

import runs
from models.config import Config, ConfigError
from reporting.seed_summary import seed_runs, spread, summarize, summary_markdown, write_summary
from reporting.timing import cumulative_minutes, minutes_table, minutes_to_accuracy
from training.seeds import finished_folders, parse_seeds, plan_seeds

HEADER = ",".join(runs.HISTORY_COLUMNS)


class ZipOnly:
    """Stands in for a model in runs.save_checkpoint: an empty archive, the run state added."""

    def save(self, path: str) -> None:
        zipfile.ZipFile(path, "w").close()


def history_file(folder: Path, rows: list[tuple[float, float, float]]) -> Path:
    """history.csv by hand: one (val accuracy, test accuracy, seconds) per epoch."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [HEADER] + [f"{epoch},0.001,1.0,0.5,1.1,{val!r},1.2,{test!r},{seconds!r}"
                        for epoch, (val, test, seconds) in enumerate(rows, 1)]
    (folder / runs.HISTORY).write_text("\n".join(lines) + "\n")
    return folder


def seed_run(out: Path, seed: int, rows: list[tuple[float, float, float]], *,
             test: float | None = None, checkpoint: int | None = None,
             preset: str = "report") -> Path:
    """A seed run folder as study.py seeds leaves it: config.json, history.csv, optionally
    evaluate.py's JSON and a checkpoint holding only the run state (epochs done)."""
    folder = history_file(out / f"seed-{seed}", rows)
    Config.from_settings({"preset": preset, "seed": seed}).save(folder / runs.CONFIG, {})
    if test is not None:
        write_evaluation(folder, test)
    if checkpoint is not None:
        runs.save_checkpoint(ZipOnly(), str(folder / runs.CHECKPOINT), {"epoch": checkpoint})
    return folder


# val, test, seconds per epoch. Test accuracy equals 0.85 at epoch 2 (and drops after it: the
# first epoch that reaches a threshold counts) and reaches 0.88 at epoch 4 as history.csv keeps
# it, in float32 (0.8799999952316284, which is 8,800 of 10,000 images).
CROSSING = [(0.80, 0.84, 30.0), (0.86, 0.85, 90.0), (0.85, 0.83, 60.0),
            (0.88, 0.8799999952316284, 120.0)]


def test_minutes_to_accuracy_on_a_hand_written_history(tmp_path):
    rows = runs.read_history(history_file(tmp_path / "run", CROSSING))
    assert cumulative_minutes(rows) == [0.5, 2.0, 3.0, 5.0]
    assert minutes_to_accuracy(rows) == {0.85: 2.0, 0.87: 5.0, 0.88: 5.0}
    assert minutes_to_accuracy(rows, (0.84, 0.851, 0.89)) == {0.84: 0.5, 0.851: 5.0, 0.89: None}
    assert minutes_to_accuracy([]) == {0.85: None, 0.87: None, 0.88: None}


def test_the_minutes_table_sets_runs_side_by_side(tmp_path):
    fast = runs.read_history(history_file(tmp_path / "fast", CROSSING))
    slow = runs.read_history(history_file(tmp_path / "slow", [(0.5, 0.86, 600.0),
                                                                (0.6, 0.87, 600.0)]))
    assert minutes_table([("fast/seed-0", fast), ("tuned", slow)]).splitlines() == [
        "| run | epochs | minutes | last test accuracy | minutes to 85% test "
        "| minutes to 87% test | minutes to 88% test |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        "| fast/seed-0 | 4 | 5.0 | 88.00% | 2.0 | 5.0 | 5.0 |",
        "| tuned | 2 | 20.0 | 87.00% | 10.0 | 20.0 | not reached |"]
    assert minutes_table([("half", slow)], (0.875,)).splitlines()[0] == \
        "| run | epochs | minutes | last test accuracy | minutes to 87.5% test |"


def test_spread_is_mean_sample_std_min_and_max():
    assert spread([0.5, 1.0, 0.75]) == {"n": 3, "mean": 0.75, "std": 0.25, "min": 0.5,
                                        "max": 1.0}
    assert spread([2.0, 4.0]) == {"n": 2, "mean": 3.0, "std": math.sqrt(2), "min": 2.0,
                                  "max": 4.0}
    assert spread([0.9]) == {"n": 1, "mean": 0.9, "std": None, "min": 0.9, "max": 0.9}
    assert spread([]) == {"n": 0, "mean": None, "std": None, "min": None, "max": None}


def three_seeds(out: Path) -> list[Path]:
    return [seed_run(out, 0, CROSSING, test=0.875),
            seed_run(out, 1, [(0.9, 0.86, 60.0), (0.9, 0.88, 60.0)], test=0.885),
            seed_run(out, 2, [(0.70, 0.80, 120.0), (0.75, 0.85, 240.0)])]  # not evaluated


def test_the_summary_of_three_seeds(tmp_path):
    summary = summarize(three_seeds(tmp_path), "report")
    assert summary["preset"] == "report" and summary["seeds"] == [0, 1, 2]
    assert summary["thresholds"] == [0.85, 0.87, 0.88]
    assert summary["runs"] == [
        {"seed": 0, "run": "seed-0", "epochs": 4, "best_epoch": 4, "best_val_accuracy": 0.88,
         "test_accuracy": 0.875, "minutes": 5.0,
         "minutes_to_test_accuracy": {"0.85": 2.0, "0.87": 5.0, "0.88": 5.0}},
        {"seed": 1, "run": "seed-1", "epochs": 2, "best_epoch": 1, "best_val_accuracy": 0.9,
         "test_accuracy": 0.885, "minutes": 2.0,  # the first epoch of tied best ones
         "minutes_to_test_accuracy": {"0.85": 1.0, "0.87": 2.0, "0.88": 2.0}},
        {"seed": 2, "run": "seed-2", "epochs": 2, "best_epoch": 2, "best_val_accuracy": 0.75,
         "test_accuracy": None, "minutes": 6.0,
         "minutes_to_test_accuracy": {"0.85": 6.0, "0.87": None, "0.88": None}}]
    stats = summary["stats"]
    assert stats["minutes"] == {"n": 3, "mean": 13 / 3,
                                "std": pytest.approx(math.sqrt(13 / 3), rel=1e-15),
                                "min": 2.0, "max": 6.0}
    assert stats["test_accuracy"] == {"n": 2, "mean": 0.88,
                                      "std": pytest.approx(0.01 / 2 ** 0.5, rel=1e-12),
                                      "min": 0.875, "max": 0.885}
    assert stats["best_val_accuracy"]["mean"] == pytest.approx(2.53 / 3, abs=1e-15)
    assert (stats["best_val_accuracy"]["min"], stats["best_val_accuracy"]["max"]) == (0.75, 0.9)


def test_summary_files_say_the_same(tmp_path):
    summary = summarize(three_seeds(tmp_path), "report")
    paths = write_summary(tmp_path, summary)
    assert json.loads(paths["json"].read_text()) == summary
    lines = paths["markdown"].read_text().splitlines()
    assert lines[0] == "# Preset report over seeds 0, 1, 2"
    assert lines[2] == ("Test accuracy (evaluate.py, best-on-validation weights) 88.00 ± 0.71% "
                        "over 2 of 3 seeds, mean ± sample std; 4.3 minutes a run on average.")
    assert "| 2 | seed-2 | 2 | 2 | 75.00% | - | 6.0 | 6.0 | not reached | not reached |" in lines
    assert "| mean | 84.33% | 88.00% | 4.3 |" in lines
    assert "| std | 8.14% | 0.71% | 2.1 |" in lines
    assert "| min | 75.00% | 87.50% | 2.0 |" in lines and "| max | 90.00% | 88.50% | 6.0 |" in lines
    assert summary_markdown(summarize([tmp_path / "seed-2"], "report")).splitlines()[2] == \
        "No seed evaluated yet by evaluate.py (1 trained)."


def test_seed_runs_are_found_by_seed_number(tmp_path):
    for seed in (10, 2):
        seed_run(tmp_path, seed, CROSSING)
    (tmp_path / "seed-3").mkdir()  # killed before its first epoch
    (tmp_path / "seed-x").mkdir()
    assert [p.name for p in seed_runs(tmp_path)] == ["seed-2", "seed-10"]


def test_seeds_parse_in_order():
    assert parse_seeds("0,1,2") == [0, 1, 2]
    assert parse_seeds(" 7, 3") == [7, 3]


@pytest.mark.parametrize(("text", "message"), [
    ("0,x", "--seeds takes seeds (whole numbers, 0 or more) separated by commas, e.g. 0,1,2; "
            "not '0,x'"),
    ("", "--seeds takes seeds (whole numbers, 0 or more) separated by commas, e.g. 0,1,2; "
         "not ''"),
    ("0,,1", "--seeds takes seeds (whole numbers, 0 or more) separated by commas, e.g. 0,1,2; "
             "not '0,,1'"),
    ("-1", "--seeds takes seeds (whole numbers, 0 or more) separated by commas, e.g. 0,1,2; "
           "not '-1'"),
    ("1,0,1", "--seeds names seed 1 twice ('1,0,1'); each seed trains once")])
def test_bad_seeds_are_refused(text, message):
    with pytest.raises(ConfigError) as error:
        parse_seeds(text)
    assert str(error.value) == message


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_the_plan_trains_then_evaluates_each_seed(tmp_path):
    steps = plan_seeds("tuned", [3, 0], data_dir="D", out=tmp_path, extra=["--limit", "500"])
    assert [(s.action, s.folder.name) for s in steps] == [
        ("train", "seed-3"), ("evaluate", "seed-3"), ("train", "seed-0"), ("evaluate", "seed-0")]
    assert steps[0].argv == ["--run", "seed-3", "--out", str(tmp_path), "--preset", "tuned",
                             "--epochs", "150", "--seed", "3", "--data-dir", "D", "--limit",
                             "500"]
    assert steps[1].argv == ["--run", str(tmp_path / "seed-3"), "--which", "best", "--data-dir",
                             "D"]
    assert steps[0].variant.label == "tuned seed 3"
    default = plan_seeds("report", [0])
    assert default[0].folder == runs.LOGS / "seeds-report" / "seed-0"
    assert flag(default[0].argv, "--epochs") == str(Config().epochs)
    assert "--data-dir" not in default[1].argv
    assert flag(plan_seeds("report", [0], epochs=2, out=tmp_path)[0].argv, "--epochs") == "2"


def test_finished_seeds_are_skipped_interrupted_ones_resumed(tmp_path):
    seed_run(tmp_path, 0, CROSSING, test=0.875)  # finished and evaluated
    seed_run(tmp_path, 1, CROSSING)  # finished, evaluate.py never ran (or was killed)
    seed_run(tmp_path, 2, CROSSING[:2], test=0.8, checkpoint=2)  # interrupted
    steps = plan_seeds("report", [0, 1, 2], epochs=4, out=tmp_path,
                       extra=["--limit", "500", "--verbose", "0"])
    assert [(s.action, s.folder.name) for s in steps] == [
        ("skip", "seed-0"), ("skip", "seed-1"), ("evaluate", "seed-1"), ("resume", "seed-2"),
        ("evaluate", "seed-2")]  # the resumed run's old evaluation is stale
    assert steps[0].note == "finished (4 of 4 epochs)" and steps[0].argv == []
    assert steps[3].argv == ["--run", "seed-2", "--out", str(tmp_path), "--resume", "--epochs",
                             "4", "--limit", "500", "--verbose", "0"]
    assert steps[3].note == "resumes at epoch 3"


def test_a_folder_of_another_preset_or_seed_is_refused(tmp_path):
    seed_run(tmp_path, 0, CROSSING, preset="tuned")
    with pytest.raises(runs.RunError) as error:
        plan_seeds("report", [0], epochs=4, out=tmp_path)
    assert str(error.value) == (f"{tmp_path / 'seed-0'} holds another run (preset='tuned' "
                                f"(study: 'report'), conv_dropout=0.1 (study: 0.5), "
                                f"fc_dropout=0.3 (study: 0.5) and 7 more); pass another --out, "
                                f"or remove the folder")
    with pytest.raises(runs.RunError, match=r"holds another run \(preset='tuned'"):
        finished_folders("report", [0], tmp_path)
    folder = history_file(tmp_path / "other" / "seed-1", CROSSING)
    Config(seed=5).save(folder / runs.CONFIG, {})
    with pytest.raises(runs.RunError, match=r"seed-1 holds another run \(seed=5 \(study: 1\)\)"):
        plan_seeds("report", [1], epochs=4, out=tmp_path / "other")
    with pytest.raises(ConfigError, match="no preset 'nope'; choose one of budget, report, tuned"):
        plan_seeds("nope", [0])
    with pytest.raises(ConfigError, match="--epochs must be at least 1, not 0"):
        plan_seeds("report", [0], epochs=0)


def test_summarizing_needs_every_seed_trained(tmp_path):
    seed_run(tmp_path, 0, CROSSING)
    assert finished_folders("report", [0], tmp_path) == [tmp_path / "seed-0"]
    with pytest.raises(runs.RunError) as error:
        finished_folders("report", [0, 1], tmp_path)
    assert str(error.value) == (f"{tmp_path / 'seed-1'} has no finished epoch in history.csv; "
                                f"run the command without --summarize-only to train it")


@pytest.mark.slow
def test_cli_dry_run_and_one_line_refusals(tmp_path):
    out = tmp_path / "seeds"
    result = run_script("study.py", "seeds", "--preset", "report", "--seeds", "4,5", "--out",
                        str(out), "--epochs", "3", "--dry-run", "--", "--limit", "500")
    assert result.returncode == 0, result.stderr[-2000:]
    printed = [shlex.split(line) for line in result.stdout.splitlines()
               if line.startswith("python ")]
    assert [command[1] for command in printed] == ["train.py", "evaluate.py"] * 2
    assert [flag(c, "--seed") for c in printed[::2]] == ["4", "5"]
    assert result.stdout.splitlines()[0] == f"[1/4] report seed 4 (seed-4): train {out}/seed-4"
    assert not out.exists()
    bad = run_script("study.py", "seeds", "--preset", "report", "--seeds", "0,x")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: --seeds takes seeds (whole numbers, 0 or more) separated by commas, e.g. 0,1,2; "
        "not '0,x'"]
    bad = run_script("study.py", "seeds", "--preset", "report", "--summarize-only", "--epochs",
                     "2")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: --summarize-only runs nothing, so it takes no --dry-run, --epochs, --data-dir or "
        "arguments after --"]


@pytest.mark.slow
def test_two_seeds_end_to_end(tiny_cifar, tmp_path):
    out = tmp_path / "seeds"
    args = ["study.py", "seeds", "--preset", "report", "--seeds", "0,1", "--epochs", "1",
            "--data-dir", str(tiny_cifar), "--out", str(out)]
    tiny = ["--", "--val-size", "50", "--batch-size", "50", "--precision", "fp32",
            "--tensorboard", "0", "--verbose", "0"]
    result = run_script(*args, *tiny, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["preset"] == "report" and summary["seeds"] == [0, 1]
    for seed, numbers in enumerate(summary["runs"]):
        folder = out / f"seed-{seed}"
        rows = runs.read_history(folder)
        assert runs.read_config(folder).seed == seed and len(rows) == 1
        evaluated = json.loads((folder / "eval" / "best-test.json").read_text())
        assert numbers["test_accuracy"] == evaluated["accuracy"]
        assert numbers["best_val_accuracy"] == rows[0]["val_accuracy"]
        assert numbers["minutes"] == rows[0]["seconds"] / 60
    assert summary["stats"]["test_accuracy"]["n"] == 2
    assert "# Preset report over seeds 0, 1" in result.stdout
    assert (out / "summary.md").read_text() in result.stdout
    # --summarize-only rebuilds the same summary from the folders alone.
    (out / "summary.json").unlink()
    rebuilt = run_script("study.py", "seeds", "--preset", "report", "--seeds", "0,1", "--out",
                         str(out), "--summarize-only")
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    assert json.loads((out / "summary.json").read_text()) == summary


def test_a_stale_evaluation_is_planned_again(tmp_path):
    folder = seed_run(tmp_path, 0, CROSSING, test=0.875)
    assert [s.action for s in plan_seeds("report", [0], epochs=4, out=tmp_path)] == ["skip"]
    (folder / runs.WEIGHTS["best"]).write_bytes(b"weights copied in since")
    assert [s.action for s in plan_seeds("report", [0], epochs=4, out=tmp_path)] == [
        "skip", "evaluate"]
