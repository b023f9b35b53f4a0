"""report.py on tiny runs: the pages, their images, and numbers equal to history.csv and evaluate.py's JSON."""

from __future__ import annotations

import base64
import csv
import json
import re
import sys
import types
from pathlib import Path

import pytest
from conftest import run_script

import report
from models.cli import UserError
from train import write_history

STUDY = {"bn-no-dropout": {"conv_dropout": 0.0, "fc_dropout": 0.0},
         "no-bn": {"batchnorm": "none"},
         "no-bn-no-dropout": {"batchnorm": "none", "conv_dropout": 0.0, "fc_dropout": 0.0}}


def read_rows(path: Path) -> list[dict]:
    with path.open() as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def copy_run(source: Path, folder: Path, weights: bool, shift: float = 0.0, **changes) -> Path:
    """A run folder from the tiny run's files: config changed as asked, accuracies shifted (no training)."""
    folder.mkdir(parents=True)
    config = json.loads((source / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **changes}))
    rows = read_rows(source / "history.csv")
    for i, row in enumerate(rows):
        row["epoch"] = int(row["epoch"])
        if shift:  # different numbers from the tiny run's, with the best validation accuracy at epoch 1
            row["val_accuracy"] = 0.2 + shift + (0.1 if i == 0 else 0.0)
            row["test_accuracy"] += shift
    write_history(folder / "history.csv", rows)
    if weights:
        (folder / "best.weights.h5").symlink_to(source / "best.weights.h5")
    return folder


@pytest.fixture
def runs(tiny_run, tmp_path) -> list[Path]:
    """The tiny run (weights, an evaluate.py JSON written here) and three study runs without weights."""
    main = copy_run(tiny_run, tmp_path / "runs" / "main", weights=True)
    (main / "eval").mkdir()
    per_class = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    (main / "eval" / "best-test.json").write_text(json.dumps(
        {"loss": 1.23456, "accuracy": 0.4321, "per_class": per_class, "n_images": 100}))
    study = [copy_run(tiny_run, tmp_path / "runs" / name, weights=False, shift=0.05 * (i + 1), **changes)
             for i, (name, changes) in enumerate(STUDY.items())]
    return [main, *study]


def table(markdown: str, first_header: str) -> list[dict[str, str]]:
    """The rows of the Markdown table whose header starts with first_header, as dicts."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return [dict(zip(rows[0], row, strict=True)) for row in rows[2:]]


def percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def best_numbers(folder: Path) -> dict:
    """Independently of report.py: the epoch of the first best validation accuracy and its numbers."""
    rows = read_rows(folder / "history.csv")
    best = max(rows, key=lambda row: (row["val_accuracy"], -row["epoch"]))
    return {"epochs": str(len(rows)), "best epoch": f"{best['epoch']:g}", "best val accuracy": percent(
        best["val_accuracy"]), "test accuracy at best epoch": percent(best["test_accuracy"]),
        "last train loss": f"{rows[-1]['train_loss']:.4f}", "last train accuracy": percent(rows[-1]["train_accuracy"])}


def fake_analyses(monkeypatch, calls: list) -> None:
    """Task VI makes a figure, Task VII neurons fails with a UserError, guided backprop is not there."""
    def filters(run: Path, out: Path, data_dir: str | None = None) -> list[Path]:
        calls.append((run, data_dir))
        out.mkdir(parents=True)
        png = out / "conv1-filters.png"
        (out / "filters.csv").write_text("filter,mean activation\n1,0.5\n")
        import matplotlib.pyplot as plt

        plt.imsave(png, [[0.0, 1.0], [1.0, 0.0]], metadata={"Software": None})
        return [png, out / "filters.csv"]

    def neurons(run: Path, out: Path, data_dir: str | None = None) -> list[Path]:
        raise UserError("no neuron fires")

    monkeypatch.setitem(sys.modules, "visualize_filters", types.SimpleNamespace(make_figures=filters))
    monkeypatch.setitem(sys.modules, "neurons", types.SimpleNamespace(make_figures=neurons))
    monkeypatch.setitem(sys.modules, "guided_backprop", None)  # import raises ModuleNotFoundError


def test_pages_images_and_numbers(runs, tiny_cifar, tmp_path, monkeypatch):
    calls = []
    fake_analyses(monkeypatch, calls)
    out = tmp_path / "report"
    pages = report.build_report([str(r) for r in runs], out, data_dir=str(tiny_cifar))
    markdown, page = pages["markdown"].read_text(), pages["html"].read_text()

    # Every image and PDF the Markdown page links exists; the HTML page embeds the same images.
    links = re.findall(r"\]\(([^)]+)\)", markdown)
    images = re.findall(r"!\[[^]]*\]\(([^)]+)\)", markdown)
    assert all((out / link).is_file() for link in links)
    assert {Path(link).name for link in images} >= {"task1-loss.png", "task1-accuracy.png", "bn-dropout-train.png",
                                                    "bn-dropout-val.png", "bn-dropout-test.png", "conv1-filters.png"}
    embedded = re.findall(r"<img alt='[^']*' src='data:image/png;base64,([^']+)'>", page)
    assert len(embedded) == len(images) == 6
    assert [base64.b64decode(data) for data in embedded] == [(out / link).read_bytes() for link in images]
    assert page.count("<img") == len(embedded)  # self-contained: every image is embedded

    # The runs table and the Task V table hold history.csv's numbers.
    runs_table = {row["run"]: row for row in table(markdown, "run")}
    for folder in runs:
        expected = best_numbers(folder)
        assert {k: runs_table[folder.name][k] for k in ("epochs", "best epoch", "best val accuracy",
                                                        "test accuracy at best epoch")} == \
            {k: expected[k] for k in ("epochs", "best epoch", "best val accuracy", "test accuracy at best epoch")}
    assert runs_table["main"]["evaluate.py test accuracy"] == "43.21%"
    assert runs_table["no-bn"]["evaluate.py test accuracy"] == "-"
    study_rows = table(markdown, "configuration")
    assert [(row["configuration"], row["run"]) for row in study_rows] == [
        ("BN", "main"), ("BN without dropouts", "bn-no-dropout"), ("NO BN", "no-bn"),
        ("NO BN without dropouts", "no-bn-no-dropout")]
    for row, folder in zip(study_rows, runs, strict=True):
        assert {k: row[k] for k in best_numbers(folder)} == best_numbers(folder)
    assert best_numbers(runs[3])["best epoch"] == "1"

    # Task II uses evaluate.py's JSON; its per-class table too.
    task2 = {row["Task II: best-on-validation weights"]: row["value"] for row in table(markdown, "Task II: "
                                                                                          "best-on-validation weights")}
    assert task2["test accuracy of best.weights.h5 (evaluate.py)"] == "43.21% on 100 images, loss 1.2346"
    assert table(markdown, "class")[3] == {"class": "cat", "test accuracy (evaluate.py)": "40.00%"}
    caption = f"Test accuracy at the best validation epoch: BN {best_numbers(runs[0])['test accuracy at best epoch']}"
    assert caption in markdown

    # Analyses: the figure made, the failure and the absent module listed with their commands.
    assert calls == [(runs[0], str(tiny_cifar))]
    assert "Also written beside the figures (figures/visualize_filters/): filters.csv." in markdown
    missing = {row["what"]: row for row in table(markdown, "what")}
    assert missing["Task VII: interesting neurons"]["why"] == "neurons failed: no neuron fires"
    assert missing["Task VII: interesting neurons"]["command"] == f"python neurons.py --run {runs[0]} " \
                                                                  f"--data-dir {tiny_cifar}"
    assert "guided_backprop.make_figures is not available" in missing["Task VII: guided backpropagation"]["why"]
    assert set(missing) == {"the optimizers study", "Task VII: interesting neurons", "Task VII: guided backpropagation"}
    assert "<b>Missing: Task VII: interesting neurons</b> (neurons failed: no neuron fires)" in page

    summary = json.loads(pages["json"].read_text())
    assert summary["studies"]["bn-dropout"] == {"BN": "main", "BN without dropouts": "bn-no-dropout",
                                                "NO BN": "no-bn", "NO BN without dropouts": "no-bn-no-dropout"}


def test_rebuilding_gives_the_same_files_and_a_run_without_weights_gets_curves(runs, tmp_path):
    unfinished = tmp_path / "runs" / "killed"  # stopped before its first epoch: config.json only
    unfinished.mkdir()
    (unfinished / "config.json").write_text(json.dumps({"runtime": {"command": "train.py --run killed"}}))
    weightless = [*runs[1:], unfinished]
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        report.build_report([str(r) for r in weightless], out, analyses=False)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert {"figures/task1-loss.pdf", "figures/bn-dropout-test.pdf", "report.html"} <= {str(p) for p in files}
    for path in files:
        assert (first / path).read_bytes() == (second / path).read_bytes(), path
    markdown = (first / "report.md").read_text()
    assert f"({weightless[0]} has no best.weights.h5)" in markdown
    assert [row["configuration"] for row in table(markdown, "configuration")] == [
        "BN without dropouts", "NO BN", "NO BN without dropouts"]
    missing = {row["what"]: row for row in table(markdown, "what")}
    assert missing["BN in the bn-dropout study"]["command"] == "python study.py bn-dropout --data-dir DATA"
    assert missing["run killed"] == {"what": "run killed", "why": "no finished epoch in history.csv",
                                     "command": "python train.py --run killed"}
    assert "killed" not in [row["run"] for row in table(markdown, "run")]


def test_study_runs_are_recognised_from_config():
    def run(name: str, **config) -> report.Run:
        base = {"batchnorm": "output", "conv_dropout": 0.5, "fc_dropout": 0.5, "optimizer": "adam",
                "learning_rate": 0.001, "momentum": 0.9, "epochs": 30, "data_dir": f"/copy/{name}"}
        return report.Run(name, Path(name), {**base, **config}, {})

    runs = [run("main", epochs=60), run("bn"), run("sgd", optimizer="sgd", learning_rate=0.01),
            run("nobn", batchnorm="none"), run("nobn-again", batchnorm="none"), run("rms", optimizer="rmsprop")]
    bn_study, optimizers = report.STUDIES
    assert [(label, r.name) for label, r in report.study_runs(bn_study, runs)] == [("BN", "bn"), ("NO BN", "nobn")]
    assert [(label, r.name) for label, r in report.study_runs(optimizers, runs)] == [
        ("Adam (lr 0.001)", "bn"), ("SGD + momentum 0.9 (lr 0.01)", "sgd"), ("RMSprop (lr 0.001)", "rms")]
    assert report.study_runs(bn_study, runs[:3]) == []
    assert report.bn_label({"batchnorm": "all", "conv_dropout": 0.0, "fc_dropout": 0.0}) == \
        "BN everywhere without dropouts"
    assert report.bn_label({"batchnorm": "none", "conv_dropout": 0.25, "fc_dropout": 0.5}) == \
        "NO BN (dropout 0.25 conv, 0.5 FC)"


def test_cli_evaluates_the_main_run_when_no_json(tiny_run, tmp_path):
    out = tmp_path / "report"
    result = run_script("report.py", str(tiny_run), "--out", str(out), "--no-analyses")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == [f"html: {out / 'report.html'}", f"markdown: {out / 'report.md'}"]
    row = table((out / "report.md").read_text(), "run")[0]
    # tiny_run's config.json names its data copy; evaluate.py re-scores the best weights on it.
    assert row["evaluate.py test accuracy"] == best_numbers(tiny_run)["test accuracy at best epoch"]
    assert not (tiny_run / "eval").exists()  # the report does not write into run folders


def test_bad_runs(tmp_path):
    with pytest.raises(UserError, match="no run folder 'nowhere'"):
        report.build_report(["nowhere"], tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"is not a run folder: it has neither config\.json nor history\.csv"):
        report.build_report([str(tmp_path / "empty")], tmp_path / "out")
    (tmp_path / "empty" / "config.json").write_text("{}")
    with pytest.raises(UserError, match=r"the main run .*empty has no finished epoch in history\.csv"):
        report.build_report([str(tmp_path / "empty")], tmp_path / "out")


def test_analysis_captions_say_what_each_figure_shows(tmp_path):
    import report

    (tmp_path / "neurons_CONV4.json").write_text(json.dumps({"selected": [{"channel": 5, "reason": "9/9 ship"}]}))
    neurons = report.analysis_caption(tmp_path / "neurons_CONV4.png")
    assert neurons.startswith("Interesting CONV4 neurons, a row each, chosen by the class purity")
    assert neurons.endswith("Picked: #5: 9/9 ship.")
    assert report.analysis_caption(tmp_path / "guided_CONV3.png").startswith(
        "Guided-backpropagation maps of each CONV3 neuron's maximal unit")
    assert report.analysis_caption(tmp_path / "saliency_CONV4_top9.png") == (
        "Each CONV4 neuron's top patches above their saliency (plain gradient) maps.")
    assert report.analysis_caption(tmp_path / "filters_CONV1_raw.png").startswith("The CONV1 filters on one common")
