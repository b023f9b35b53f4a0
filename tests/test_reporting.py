"""The reporting package (and report.py) on small run folders: the pages, their images, numbers
equal to history.csv and evaluate.py's JSON, study runs recognised by their Config, and a
settings table that shows every setting a run changed."""

from __future__ import annotations

import base64
import csv
import dataclasses
import importlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import run_script, write_evaluation

import runs as run_folder
from analysis import AnalysisError
from analysis.inputs import RunImages
from analysis.sanity import SanityCheck, Stage
from analysis.sanity_figures import summary as sanity_summary
from cli import args as flags
from models.config import Config
from reporting import build, seed_summary
from reporting.analyses import analysis_caption
from reporting.build import build_report
from reporting.comparisons import COMPARISONS, describe, members
from reporting.explanations import sanity_reading
from reporting.run_records import RunRecord
from reporting.settings import SETTINGS, settings_rows
from runs import RunError

STUDY = {"bn-no-dropout": {"conv_dropout": 0.0, "fc_dropout": 0.0},
         "no-bn": {"batchnorm": "none"},
         "no-bn-no-dropout": {"batchnorm": "none", "conv_dropout": 0.0, "fc_dropout": 0.0}}
EPOCHS = 4


def history(shift: float) -> list[dict]:
    """Made-up epochs; the validation accuracy ties at epochs 2 and 4 unless the shift is large
    enough to peak at epoch 1, so both the first-of-ties rule and an early best are exercised."""
    peak = [0.30, 0.40, 0.35, 0.40] if shift < 0.1 else [0.50, 0.40, 0.35, 0.40]
    return [{"epoch": epoch, "learning_rate": 1e-3, "train_loss": 2.0 - 0.2 * epoch - shift,
             "train_accuracy": 0.2 + 0.05 * epoch + shift, "val_loss": 1.9 - 0.1 * epoch - shift,
             "val_accuracy": peak[epoch - 1] + shift, "test_loss": 1.8 - 0.1 * epoch - shift,
             "test_accuracy": 0.25 + 0.03 * epoch + shift, "seconds": 30.0 + epoch}
            for epoch in range(1, EPOCHS + 1)]


def make_run(folder: Path, config: Config, shift: float = 0.0, weights: bool = False,
             command: str | None = None) -> Path:
    """A run folder as train.py leaves it, without training: config.json and history.csv (and a
    stand-in weights file, enough for the report to try the analyses)."""
    folder.mkdir(parents=True)
    config.save(folder / run_folder.CONFIG, {"command": command or f"train.py --run {folder.name}"})
    run_folder.write_history(folder / run_folder.HISTORY, history(shift)[:config.epochs])
    if weights:
        (folder / run_folder.WEIGHTS["best"]).write_bytes(b"not read by the fake analyses")
    return folder


@pytest.fixture
def runs(tiny_cifar, tmp_path) -> list[Path]:
    """A main run (stand-in weights, an evaluate.py JSON) and three bn-dropout study runs."""
    config = Config(epochs=EPOCHS, data_dir=str(tiny_cifar), precision="fp32")
    main = make_run(tmp_path / "runs" / "main", config, weights=True)
    per_class = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    write_evaluation(main, 0.4321, 1.23456, per_class=per_class, n_images=100)
    study = [make_run(tmp_path / "runs" / name, dataclasses.replace(config, **changes),
                      shift=0.05 * (i + 1)) for i, (name, changes) in enumerate(STUDY.items())]
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
    """Independently of the package: the epoch of the first best validation accuracy and its
    numbers, from history.csv itself."""
    with (folder / "history.csv").open() as f:
        rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    best = max(rows, key=lambda row: (row["val_accuracy"], -row["epoch"]))
    return {"epochs": str(len(rows)), "best epoch": f"{best['epoch']:g}",
            "best val accuracy": percent(best["val_accuracy"]),
            "test accuracy at best epoch": percent(best["test_accuracy"]),
            "last train loss": f"{rows[-1]['train_loss']:.4f}",
            "last train accuracy": percent(rows[-1]["train_accuracy"])}


EXPLANATION_TITLES = ("Explanations: Grad-CAM and Guided Grad-CAM",
                      "Explanations: what a unit wants (activation maximization)",
                      "Explanations: the sanity check (cascading randomization)")


def replace_analyses(monkeypatch, **makes) -> None:
    """The report's analyses with these functions in place of theirs, by their folder name."""
    monkeypatch.setattr(build, "ANALYSES", tuple(
        dataclasses.replace(a, make=makes.get(a.folder, a.make)) for a in build.ANALYSES))


def absent(run_images: RunImages, out: Path) -> list[Path]:
    raise RuntimeError("absent in this test")


def fake_analyses(monkeypatch, calls: list) -> None:
    """Task VI makes a figure, Task VII neurons fails with a library error, guided backprop and
    the explanations fail with a bug."""
    def filters(run_images: RunImages, out: Path) -> list[Path]:
        calls.append((run_images.run, run_images.data_dir))
        out.mkdir(parents=True)
        png = out / "conv1-filters.png"
        (out / "filters.csv").write_text("filter,mean activation\n1,0.5\n")
        import matplotlib.pyplot as plt

        plt.imsave(png, [[0.0, 1.0], [1.0, 0.0]], metadata={"Software": None})
        return [png, out / "filters.csv"]

    def neurons(run_images: RunImages, out: Path) -> list[Path]:
        raise AnalysisError("no neuron fires")

    replace_analyses(monkeypatch, visualize_filters=filters, neurons=neurons,
                     guided_backprop=absent, gradcam=absent, activation_max=absent, sanity=absent)


@pytest.mark.parametrize("analysis", build.ANALYSES, ids=lambda analysis: analysis.folder)
def test_each_analysis_reads_what_its_script_reads_by_default(analysis):
    # The report's figures are said to be made "as `command` would": the same weights, split,
    # number of images and batch size as the script's defaults.
    script, *method = analysis.script.split()
    args = importlib.import_module(script.removesuffix(".py")).parse_args([*method, "--run", "r"])
    assert flags.run_images(args) == RunImages("r", images=analysis.images)


def test_pages_images_and_numbers(runs, tiny_cifar, tmp_path, monkeypatch):
    calls = []
    fake_analyses(monkeypatch, calls)
    out = tmp_path / "report"
    logged = []
    pages = build_report([str(r) for r in runs], out, data_dir=str(tiny_cifar),
                         log=logged.append)
    markdown, page = pages["markdown"].read_text(), pages["html"].read_text()

    # Every image and PDF the Markdown page links exists; the HTML page embeds the same images.
    links = re.findall(r"\]\(([^)]+)\)", markdown)
    images = re.findall(r"!\[[^]]*\]\(([^)]+)\)", markdown)
    assert all((out / link).is_file() for link in links)
    assert {Path(link).name for link in images} >= {
        "task1-loss.png", "task1-accuracy.png", "bn-dropout-train.png", "bn-dropout-val.png",
        "bn-dropout-test.png", "conv1-filters.png"}
    embedded = re.findall(r"<img alt='[^']*' src='data:image/png;base64,([^']+)'>", page)
    assert len(embedded) == len(images) == 6
    assert [base64.b64decode(data) for data in embedded] == [(out / link).read_bytes()
                                                            for link in images]
    assert page.count("<img") == len(embedded)  # self-contained: every image is embedded

    # The runs table and the Task V table hold history.csv's numbers.
    runs_table = {row["run"]: row for row in table(markdown, "run")}
    keys = ("epochs", "best epoch", "best val accuracy", "test accuracy at best epoch")
    for folder in runs:
        expected = best_numbers(folder)
        assert {k: runs_table[folder.name][k] for k in keys} == {k: expected[k] for k in keys}
    assert runs_table["main"]["evaluate.py test accuracy"] == "43.21%"
    assert runs_table["no-bn"]["evaluate.py test accuracy"] == "-"
    assert runs_table["no-bn"]["configuration"] == "NO BN, Adam (lr 0.001)"
    study_rows = table(markdown, "configuration")
    assert [(row["configuration"], row["run"]) for row in study_rows] == [
        ("BN", "main"), ("BN without dropouts", "bn-no-dropout"), ("NO BN", "no-bn"),
        ("NO BN without dropouts", "no-bn-no-dropout")]
    for row, folder in zip(study_rows, runs, strict=True):
        assert {k: row[k] for k in best_numbers(folder)} == best_numbers(folder)
    assert best_numbers(runs[0])["best epoch"] == "2"  # the first of two equal epochs
    assert best_numbers(runs[3])["best epoch"] == "1"

    # Task II uses evaluate.py's JSON; its per-class table too. Task III is the run's Config.
    task2 = {row["Task II: best-on-validation weights"]: row["value"]
             for row in table(markdown, "Task II: best-on-validation weights")}
    assert task2["test accuracy of best.weights.h5 (evaluate.py)"] == \
        "43.21% on 100 images, loss 1.2346"
    assert table(markdown, "class")[3] == {"class": "cat", "test accuracy (evaluate.py)": "40.00%"}
    task3 = {row["Task III: setting"]: row["value"] for row in table(markdown, "Task III: setting")}
    assert (task3["epochs"], task3["precision"]) == (str(EPOCHS), "fp32")
    assert not any(str(tiny_cifar) in value for value in task3.values())  # a path, not a setting
    caption = ("Test accuracy at the best validation epoch: BN "
               f"{best_numbers(runs[0])['test accuracy at best epoch']}")
    assert caption in markdown

    # Analyses: the figure made, the failure and the absent module listed with their commands.
    assert calls == [(runs[0], str(tiny_cifar))]
    assert "Also written beside the figures (figures/visualize_filters/): filters.csv." in markdown
    missing = {row["what"]: row for row in table(markdown, "what")}
    assert missing["Task VII: interesting neurons"]["why"] == "neurons failed: no neuron fires"
    assert missing["Task VII: interesting neurons"]["command"] == \
        f"python neurons.py --run {runs[0]} --data-dir {tiny_cifar}"
    assert missing["Task VII: guided backpropagation"]["why"] == \
        "guided_backprop failed: RuntimeError: absent in this test"
    assert set(missing) == {"the optimizers study", "Task VII: interesting neurons",
                            "Task VII: guided backpropagation", *EXPLANATION_TITLES}
    assert "<b>Missing: Task VII: interesting neurons</b> (neurons failed: no neuron fires)" in page
    # What failed, a line each for the script to print (the library prints nothing).
    assert logged == ["warning: test_reporting.neurons failed: no neuron fires",
                      *["warning: test_reporting.absent failed: RuntimeError: absent in this test"]
                      * 4]

    summary = json.loads(pages["json"].read_text())
    assert summary["studies"]["bn-dropout"] == {
        "BN": "main", "BN without dropouts": "bn-no-dropout", "NO BN": "no-bn",
        "NO BN without dropouts": "no-bn-no-dropout"}
    assert summary["studies"]["optimizers"] == {}


def test_the_copy_a_run_trained_on_is_used_when_no_data_dir_is_given(runs, tmp_path, monkeypatch):
    monkeypatch.delenv("CIFAR10_DIR", raising=False)
    calls = []
    fake_analyses(monkeypatch, calls)
    build_report([str(runs[0])], tmp_path / "a")
    assert calls == [(runs[0], run_folder.read_config(runs[0]).data_dir)]

    moved = make_run(tmp_path / "moved", Config(epochs=EPOCHS, data_dir=str(tmp_path / "gone")),
                     weights=True)
    markdown = build_report([str(moved)], tmp_path / "b")["markdown"].read_text()
    missing = {row["what"]: row for row in table(markdown, "what")}
    assert missing["Task VII: interesting neurons"]["why"] == "no CIFAR-10 copy: pass --data-dir"
    assert missing["evaluate.py's test accuracy of the best weights"]["why"] == \
        "no eval/best-test.json, and no --data-dir to run evaluate.py with"
    assert len(calls) == 2 and calls[1] == (moved, None)  # filters need no data


@pytest.mark.parametrize("damage, why", [
    ("weights", "is stale: it scored other weights than {weights}"),
    ("corrupt", "cannot be read (Expecting property name enclosed in double quotes: line 1 "
                "column 2 (char 1))"),
    ("keys", "lacks loss, weights_sha256")])
def test_a_stale_or_broken_evaluation_is_not_quoted_and_the_page_says_why(runs, tmp_path,
                                                                          damage, why):
    main = runs[0]
    Config(epochs=EPOCHS, data_dir=str(tmp_path / "gone")).save(main / run_folder.CONFIG, {})
    evaluation = run_folder.eval_json(main, "best", "test")
    weights = main / run_folder.WEIGHTS["best"]
    if damage == "weights":
        weights.write_bytes(b"weights trained since")
    else:
        evaluation.write_text("{" if damage == "corrupt" else json.dumps({"accuracy": 0.4321}))
    markdown = build_report([str(main)], tmp_path / "report", analyses=False)[
        "markdown"].read_text()
    assert "43.21%" not in markdown
    missing = {row["what"]: row for row in table(markdown, "what")}
    again = f"run evaluate.py --run {main} --which best --split test again"
    assert missing["evaluate.py's test accuracy of the best weights"]["why"] == (
        f"{evaluation} {why.format(weights=weights)}; {again}")


def test_rebuilding_gives_the_same_files_and_a_run_without_weights_gets_curves(runs, tmp_path):
    unfinished = tmp_path / "runs" / "killed"  # stopped before its first epoch: config.json only
    unfinished.mkdir()
    (unfinished / "config.json").write_text(json.dumps(
        {"runtime": {"command": "train.py --run killed --epochs 7"}}))
    weightless = [*runs[1:], unfinished]
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        build_report([str(r) for r in weightless], out, analyses=False)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert {"figures/task1-loss.pdf", "figures/bn-dropout-test.pdf", "report.html"} <= {
        str(p) for p in files}
    for path in files:
        assert (first / path).read_bytes() == (second / path).read_bytes(), path
    markdown = (first / "report.md").read_text()
    assert f"({weightless[0]} has no best.weights.h5)" in markdown
    assert [row["configuration"] for row in table(markdown, "configuration")] == [
        "BN without dropouts", "NO BN", "NO BN without dropouts"]
    missing = {row["what"]: row for row in table(markdown, "what")}
    assert missing["BN in the bn-dropout study"]["command"] == \
        "python study.py bn-dropout --data-dir DATA"
    assert missing["run killed"] == {"what": "run killed",
                                     "why": "no finished epoch in history.csv",
                                     "command": "python train.py --run killed --epochs 7"}
    assert "killed" not in [row["run"] for row in table(markdown, "run")]


def run(name: str, **settings) -> RunRecord:
    """A run the report knows only by its Config; the copy it trained on differs per run."""
    config = Config(**{"epochs": 30, "data_dir": f"/copy/{name}", **settings})
    return RunRecord(name, Path(name), config, True, [])


def test_study_runs_are_recognised_from_config():
    bn_figure, optimizers = COMPARISONS
    given = [run("main", epochs=60), run("bn"), run("sgd", optimizer="sgd", learning_rate=0.01),
             run("nobn", batchnorm="none"), run("nobn-again", batchnorm="none"),
             run("rms", optimizer="rmsprop", precision="bf16"),
             run("odd", batchnorm="none", conv_dropout=0.25)]  # in no study: not in the figure
    assert [(v.label, r.name) for v, r in members(bn_figure, given)] == [("BN", "bn"),
                                                                          ("NO BN", "nobn")]
    assert [(v.label, r.name) for v, r in members(optimizers, given)] == [
        ("Adam (lr 0.001)", "bn"), ("SGD + momentum 0.9 (lr 0.01)", "sgd"),
        ("RMSprop (lr 0.001)", "rms")]
    assert members(bn_figure, given[:3]) == []
    # A run without config.json is never taken for a study's run.
    no_config = RunRecord("a", Path("a"), Config(epochs=30, batchnorm="none"), False, [])
    assert members(bn_figure, [no_config, run("b")]) == []
    assert len(members(bn_figure, [run("a", batchnorm="none"), run("b")])) == 2


def test_bn_everywhere_runs_join_the_task_v_figure_in_legend_order():
    bn_figure = COMPARISONS[0]
    given = [run("all-nd", batchnorm="all", conv_dropout=0.0, fc_dropout=0.0),
             run("nobn", batchnorm="none"), run("all", batchnorm="all"), run("bn"),
             run("longer", batchnorm="all", epochs=40)]  # other settings differ: another group
    assert [(v.label, r.name) for v, r in members(bn_figure, given)] == [
        ("BN", "bn"), ("NO BN", "nobn"), ("BN everywhere", "all"),
        ("BN everywhere without dropouts", "all-nd")]
    assert [v.label for v in bn_figure.study.variants] == [
        "BN", "BN without dropouts", "NO BN", "NO BN without dropouts"]  # what may be missing
    assert [bn_figure.style(r.config, i) for i, (_, r) in enumerate(members(bn_figure, given))] \
        == [("C0", "-"), ("C3", "-"), ("C2", "-"), ("C2", "--")]


def test_the_runs_table_describes_a_run_by_the_studies_labels():
    assert describe(Config()) == "BN, Adam (lr 0.001)"
    assert describe(Config(batchnorm="all", conv_dropout=0.0, fc_dropout=0.0, optimizer="sgd",
                           learning_rate=0.01)) == \
        "BN everywhere without dropouts, SGD + momentum 0.9 (lr 0.01)"
    # Outside the studies: the studied settings that differ from the report's recipe.
    assert describe(Config(batchnorm="none", conv_dropout=0.25)) == \
        "batchnorm none, conv_dropout 0.25, Adam (lr 0.001)"
    assert describe(Config.from_settings({"preset": "tuned"})) == \
        "conv_dropout 0.1, fc_dropout 0.3, optimizer adamw, learning_rate 0.002"


REPORT_TABLE = [
    ["patience parameter p", "5"], ["learning-rate decay", "x0.1 on a validation-loss plateau"],
    ["dropout rate (conv / FC)", "0.5 / 0.5"], ["batch size", "100"],
    ["initial learning rate", "0.001"], ["optimizer", "adam"],
    ["initialization", "Xavier (Glorot uniform)"], ["batch normalization", "output"],
    ["data augmentation", "random shifts up to 4 px, horizontal flips"], ["epochs", "60"],
    ["seed", "0"], ["preset", "report"]]


def test_the_report_s_recipe_has_the_report_s_settings_table():
    assert settings_rows(Config()) == REPORT_TABLE


def test_the_tuned_run_s_table_shows_what_it_changed_and_no_patience():
    tuned = Config.from_settings({"preset": "tuned", "data_dir": "/data", "precision": "bf16"})
    rows = dict(settings_rows(tuned))
    assert len(rows) == len(settings_rows(tuned))  # no name twice
    assert "patience parameter p" not in rows
    assert rows == {
        "learning-rate decay": "cosine, to 0 at the end of epoch 150",
        "warm-up": "3 epochs, linear from 0.0002 to 0.002",
        "dropout rate (conv / FC)": "0.1 / 0.3", "batch size": "100",
        "initial learning rate": "0.002", "optimizer": "adamw", "weight decay": "0.05",
        "label smoothing": "0.1", "initialization": "Xavier (Glorot uniform)",
        "batch normalization": "output",
        "data augmentation": "random shifts up to 4 px, horizontal flips",
        "Cutout": "one 16x16 px square zeroed per training image", "epochs": "150", "seed": "0",
        "preset": "tuned", "precision": "bf16"}
    # Every field the run changed is in a row it shows (but the data's path, which is no setting).
    shown = {f for s in SETTINGS if s.shown(tuned) for f in s.fields}
    assert set(Config().differences(tuned)) - shown == {"data_dir"}


# A value other than the recipe's for every Config field, and what it needs to be used at all.
CHANGED = {"preset": "tuned", "batchnorm": "none", "conv_dropout": 0.25, "fc_dropout": 0.25,
           "optimizer": "rmsprop", "learning_rate": 0.01, "momentum": 0.5, "weight_decay": 0.01,
           "label_smoothing": 0.2, "schedule": "cosine", "patience": 3, "decay_factor": 0.5,
           "warmup_epochs": 2, "batch_size": 50, "epochs": 10, "budget_minutes": 20,
           "early_stop": 4, "augment": False,
           "translate": 2, "flip": False, "cutout": 8, "val_size": 1000, "limit": 2000,
           "seed": 1, "precision": "fp16", "xla": True, "strategy": "mirrored"}
NEEDS = {"momentum": {"optimizer": "sgd"}, "warmup_epochs": {"schedule": "cosine"}}


# Where the data copy lies and whether the run wrote TensorBoard event files are not part of the
# recipe: the page shows neither.
@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(Config)
                                   if f.name not in ("data_dir", "tensorboard")])
def test_every_setting_that_differs_from_the_recipe_changes_the_table(field):
    base = Config(**NEEDS.get(field, {}))
    changed = dataclasses.replace(base, **{field: CHANGED[field]})
    assert settings_rows(changed) != settings_rows(base)
    assert field in {f for s in SETTINGS if s.shown(changed) for f in s.fields}


@pytest.mark.parametrize(("unused", "config"), [
    ("patience", Config(schedule="cosine")), ("decay_factor", Config(schedule="cosine")),
    ("warmup_epochs", Config()), ("momentum", Config(optimizer="adam")),
    ("cutout", Config(augment=False))])
def test_a_setting_training_does_not_use_is_not_shown(unused, config):
    assert settings_rows(dataclasses.replace(config, **{unused: CHANGED[unused]})) == \
        settings_rows(config)


def test_a_cosine_run_shows_its_schedule_and_warm_up_instead_of_a_patience():
    rows = dict(settings_rows(Config(schedule="cosine", epochs=20)))
    assert "patience parameter p" not in rows
    assert rows["learning-rate decay"] == "cosine, to 0 at the end of epoch 20"
    assert rows["warm-up"] == "none"
    assert dict(settings_rows(Config(optimizer="sgd")))["momentum"] == "0.9 (Nesterov)"
    assert dict(settings_rows(Config(augment=False)))["data augmentation"] == "none"
    assert dict(settings_rows(Config(flip=False)))["data augmentation"] == \
        "random shifts up to 4 px"


@pytest.mark.slow
def test_cli_evaluates_the_main_run_when_no_json(tiny_run, tmp_path):
    out = tmp_path / "report"
    result = run_script("report.py", str(tiny_run), "--out", str(out), "--no-analyses")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == [f"html: {out / 'report.html'}",
                                          f"markdown: {out / 'report.md'}"]
    row = table((out / "report.md").read_text(), "run")[0]
    # tiny_run's config.json names its data copy; evaluate.py re-scores the best weights on it.
    assert row["evaluate.py test accuracy"] == best_numbers(tiny_run)["test accuracy at best epoch"]
    assert not (tiny_run / "eval").exists()  # the report does not write into run folders


@pytest.mark.slow
def test_cli_bad_run_is_one_line(tmp_path):
    result = run_script("report.py", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: no run folder '{tmp_path / 'nowhere'}' (looked for it as a path and in "
        f"{run_folder.LOGS})"]


def test_bad_runs(tmp_path):
    with pytest.raises(RunError, match="no run folder 'nowhere'"):
        build_report(["nowhere"], tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match=r"is not a run folder: it has neither config\.json nor "
                                       r"history\.csv"):
        build_report([str(tmp_path / "empty")], tmp_path / "out")
    (tmp_path / "empty" / "config.json").write_text("{}")
    with pytest.raises(RunError, match=r"the main run .*empty has no finished epoch in "
                                       r"history\.csv"):
        build_report([str(tmp_path / "empty")], tmp_path / "out")


def test_analysis_captions_say_what_each_figure_shows(tmp_path):
    (tmp_path / "neurons_CONV4.json").write_text(json.dumps(
        {"selected": [{"channel": 5, "reason": "9/9 ship"}]}))
    neurons = analysis_caption(tmp_path / "neurons_CONV4.png")
    assert neurons.startswith("Interesting CONV4 neurons, a row each, chosen by the class purity")
    assert neurons.endswith("Picked: #5: 9/9 ship.")
    assert analysis_caption(tmp_path / "guided_CONV3.png").startswith(
        "Guided-backpropagation maps of each CONV3 neuron's maximal unit")
    assert analysis_caption(tmp_path / "saliency_CONV4_top9.png") == (
        "Each CONV4 neuron's top patches above their saliency (plain gradient) maps.")
    assert analysis_caption(tmp_path / "filters_CONV1_raw.png").startswith(
        "The CONV1 filters on one common")


# The explanations of the featured run: Grad-CAM's sample, activation maximization's channels
# and the sanity check's numbers, from files as the analysis package writes them.
STAGES = ["trained", "SOFTMAX", "FC2", "FC1", "CONV4", "CONV3", "CONV2", "CONV1"]
RANK = {"saliency": [1.0, 0.6, 0.4, 0.21, 0.15, 0.1, 0.08, 0.05],
        "guided": [1.0, 0.98, 0.95, 0.91, 0.8, 0.7, 0.62, 0.55],
        "gradcam": [1.0, 0.5, 0.3, 0.12, 0.1, 0.05, 0.02, None]}


def sanity_json(rank: dict, layer: str = "CONV4") -> dict:
    """sanity_L.json as analysis.sanity_figures writes it, from made-up rank correlations of two
    images per stage (each image the mean; None: every map constant)."""
    def per_image(values: list) -> np.ndarray:
        return np.array([[np.nan, np.nan] if v is None else [v, v] for v in values])

    check = SanityCheck([Stage(name, (), ()) for name in STAGES], np.zeros(2, np.int64), {},
                        {m: per_image(v) for m, v in rank.items()},
                        {m: per_image(v) for m, v in rank.items()})
    return {"layer": layer, "images": 2, "stages": STAGES, "methods": sanity_summary(check)}


def png(path: Path) -> Path:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(path, [[0.0, 1.0], [1.0, 0.0]], metadata={"Software": None})
    return path


def write_gradcam_maps(path: Path) -> None:
    """gradcam_L_maps.npz with the keys gradcam_figures writes that the caption reads: two
    classes, each with its most confident correct image and its most confident mistake."""
    probabilities = np.full((4, 10), 0.01, np.float32)
    probabilities[[0, 1, 2, 3], [3, 5, 5, 3]] = [0.95, 0.9, 0.85, 0.8]
    np.savez_compressed(path, layer="CONV4", split="test", target="predicted",
                        kinds=np.asarray(["correct", "mistake", "correct", "mistake"]),
                        labels=np.array([3, 3, 5, 5]), predictions=np.array([3, 5, 5, 3]),
                        probabilities=probabilities)


ACTMAX = {"steps": 256, "objective": "mean", "jitter": 2, "seed": 0, "channels": [
    {"channel": 5, "dominant": "ship", "synthesized_max": 50.0, "top_activations": [40.0, 30.0]},
    {"channel": 7, "dominant": "cat", "synthesized_max": 10.0, "top_activations": [20.0, 10.0]}]}


def fake_explanations(monkeypatch, calls: list, rank: dict = RANK) -> None:
    """The three explanations write their figures and files as the analysis package does."""
    def gradcam(run_images: RunImages, out: Path) -> list[Path]:
        calls.append(("gradcam", run_images.run, run_images.data_dir))
        png(out / "gradcam_CONV4.png")
        write_gradcam_maps(out / "gradcam_CONV4_maps.npz")
        return [out / "gradcam_CONV4_maps.npz", out / "gradcam_CONV4.png"]

    def actmax(run_images: RunImages, out: Path) -> list[Path]:
        calls.append(("actmax", run_images.run, run_images.data_dir))
        (png(out / "actmax_CONV4.png").with_suffix(".json")).write_text(json.dumps(ACTMAX))
        return [out / "actmax_CONV4.png", out / "actmax_CONV4.json"]

    def sanity(run_images: RunImages, out: Path) -> list[Path]:
        calls.append(("sanity", run_images.run, run_images.data_dir))
        out.mkdir(parents=True)
        (out / "sanity_CONV4.json").write_text(json.dumps(sanity_json(rank)))
        return [out / "sanity_CONV4.json", png(out / "sanity_CONV4.png"),
                png(out / "sanity_CONV4_curve.png")]

    replace_analyses(monkeypatch, gradcam=gradcam, activation_max=actmax, sanity=sanity)


def captions(markdown: str) -> dict[str, str]:
    """Each figure's caption by its image's name."""
    return dict(re.findall(r"!\[([^]]+)\]\([^)]+\)\n\n\*(.+?)\*", markdown))


def test_the_featured_run_s_weights_make_the_analyses_and_tasks_i_to_iv_stay_the_main_run_s(
        runs, tiny_cifar, tmp_path, monkeypatch):
    calls = []
    fake_analyses(monkeypatch, calls)
    fake_explanations(monkeypatch, calls)
    featured = make_run(tmp_path / "elsewhere" / "tuned",
                        Config.from_settings({"preset": "tuned", "epochs": EPOCHS,
                                              "data_dir": str(tiny_cifar)}),
                        shift=0.3, weights=True)
    pages = build_report([str(r) for r in runs], tmp_path / "report", featured=str(featured),
                         data_dir=str(tiny_cifar))
    markdown = pages["markdown"].read_text()

    # Every analysis is of the featured run's weights; its captions and commands say so.
    assert calls == [(featured, str(tiny_cifar)), ("gradcam", featured, str(tiny_cifar)),
                     ("actmax", featured, str(tiny_cifar)), ("sanity", featured, str(tiny_cifar))]
    shown = captions(markdown)
    for name in ("conv1-filters", "gradcam_CONV4", "actmax_CONV4", "sanity_CONV4",
                 "sanity_CONV4_curve"):
        assert f"Made from tuned's best weights ({featured}), as `python " in shown[name], name
    assert f"as `python explain.py sanity --run {featured} --data-dir {tiny_cifar}` would" in \
        shown["sanity_CONV4"]
    missing = {row["what"]: row for row in table(markdown, "what")}
    assert missing["Task VII: interesting neurons"]["command"] == \
        f"python neurons.py --run {featured} --data-dir {tiny_cifar}"

    # Tasks I-IV are the main run's; the runs table shows the featured run after the others.
    assert markdown.startswith("# CIFAR-10 report (CS7011 PA2), main run main, analyses of tuned")
    assert "per epoch of run main on train, validation and test" in shown["task1-loss"]
    task2 = {row["Task II: best-on-validation weights"]: row["value"]
             for row in table(markdown, "Task II: best-on-validation weights")}
    assert task2["best validation accuracy"] == \
        f"{best_numbers(runs[0])['best val accuracy']} (epoch 2)"
    task3 = dict(row.values() for row in table(markdown, "Task III: setting"))
    assert task3["preset"] == "report"
    runs_table = table(markdown, "run")
    assert [row["run"] for row in runs_table] == ["main", "bn-no-dropout", "no-bn",
                                                  "no-bn-no-dropout", "tuned"]
    assert runs_table[-1]["best val accuracy"] == best_numbers(featured)["best val accuracy"]
    assert f"the featured run, tuned ({featured})" in markdown
    assert [row["run"] for row in table(markdown, "configuration")] == [
        "main", "bn-no-dropout", "no-bn", "no-bn-no-dropout"]  # the studies: the runs given
    summary = json.loads(pages["json"].read_text())
    assert (summary["main"], summary["featured"]) == ("main", "tuned")
    assert [run["run"] for run in summary["runs"]][-1] == "tuned"


def test_featuring_a_run_given_shows_it_once_and_no_flag_features_the_main_run(
        runs, tiny_cifar, tmp_path, monkeypatch):
    calls = []
    fake_analyses(monkeypatch, calls)
    for folder in (runs[1], runs[2]):
        (folder / run_folder.WEIGHTS["best"]).write_bytes(b"stand-in")
    pages = build_report([str(r) for r in runs], tmp_path / "a", featured=str(runs[2]),
                         data_dir=str(tiny_cifar))
    markdown = pages["markdown"].read_text()
    assert [row["run"] for row in table(markdown, "run")] == [r.name for r in runs]
    assert calls == [(runs[2], str(tiny_cifar))]
    build_report([str(r) for r in runs], tmp_path / "b", data_dir=str(tiny_cifar))
    assert calls[1] == (runs[0], str(tiny_cifar))
    summary = json.loads((tmp_path / "b" / "report.json").read_text())
    assert summary["featured"] == "main"
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text("{}")
    with pytest.raises(RunError, match=r"the featured run .*unfinished has no finished epoch"):
        build_report([str(runs[0])], tmp_path / "c", featured=str(unfinished))


def test_the_sanity_table_and_captions_come_from_the_sanity_json(runs, tiny_cifar, tmp_path,
                                                                  monkeypatch):
    calls = []
    fake_analyses(monkeypatch, calls)
    fake_explanations(monkeypatch, calls)
    pages = build_report([str(runs[0])], tmp_path / "report", data_dir=str(tiny_cifar))
    markdown, page = pages["markdown"].read_text(), pages["html"].read_text()

    rows = table(markdown, "rank correlation with the trained maps")
    assert rows == [
        dict(zip(["rank correlation with the trained maps", *STAGES],
                 [name, *("n/a" if v is None else f"{v:.2f}" for v in RANK[method])],
                 strict=True))
        for method, name in (("saliency", "saliency"), ("guided", "guided backpropagation"),
                             ("gradcam", "Grad-CAM"))]
    assert "<th>rank correlation with the trained maps</th><th>trained</th>" in page
    shown = captions(markdown)
    assert shown["sanity_CONV4"].startswith("The cascading randomization check (Adebayo et al.")
    assert ("With the layers above CONV4 re-initialized (SOFTMAX, FC2, FC1), the mean rank "
            "correlation with the trained maps over 2 images is: saliency 0.21, guided "
            "backpropagation 0.91, Grad-CAM 0.12. With every layer re-initialized (down to "
            "CONV1): saliency 0.05, guided backpropagation 0.55, Grad-CAM n/a. Guided "
            "backpropagation's maps stay close to the trained ones (0.91) when the layers that "
            "decide the class are random, so they show the image's edges more than what the "
            "classifier learned") in shown["sanity_CONV4"]
    assert "Saliency's and Grad-CAM's fall (0.21, 0.12), so they depend on the training." in \
        shown["sanity_CONV4"]
    assert "the numbers are in the table below" in shown["sanity_CONV4_curve"]
    assert "Guided backpropagation's maps" not in shown["sanity_CONV4_curve"]
    numbers = json.loads(pages["json"].read_text())["analyses"][EXPLANATION_TITLES[2]]
    assert numbers["sanity_rank_correlation"]["guided"] == dict(zip(STAGES, RANK["guided"],
                                                                    strict=True))
    assert numbers["sanity_rank_correlation"]["gradcam"]["CONV1"] is None

    # Grad-CAM's caption names the sample and its mistakes; activation maximization's compares
    # each synthesized image with the channel's best real one.
    assert shown["gradcam_CONV4"].startswith("Class-level maps: Grad-CAM (Selvaraju et al.")
    assert ("The 4 rows: for each class, its most confident correct test image and its most "
            "confident mistake (2 correct, 2 mistakes). Each map explains the predicted class, "
            "so a mistake's map shows what made the network see the wrong class. Mistakes: cat "
            "taken for dog (0.90); dog taken for cat (0.80).") in shown["gradcam_CONV4"]
    assert ("256 steps of gradient ascent on the channel's mean activation, jitter 2 px, seed 0; "
            "the synthesized input excites 1 of the 2 channels more than any of their top real "
            "images. Largest activation, synthesized / best real image: #5 (ship) 50.0 / 40.0; "
            "#7 (cat) 10.0 / 20.0.") in shown["actmax_CONV4"]
    assert "Also written beside the figures (figures/sanity/): sanity_CONV4.json." in markdown
    assert not any(row["what"] in EXPLANATION_TITLES for row in table(markdown, "what"))


def test_the_sanity_reading_follows_the_numbers():
    reading = sanity_reading(sanity_json(RANK))
    assert "so they show the image's edges more than what the classifier learned" in reading
    # Guided backpropagation that falls with the top layers is read as depending on them.
    fell = sanity_reading(sanity_json({**RANK, "guided": [1.0, 0.7, 0.5, 0.3, 0.2, 0.1, 0, 0]}))
    assert "Guided backpropagation's maps change (0.30) when the layers that decide the class " \
           "are random, so here they do depend on what the network learned." in fell
    assert "edges" not in fell
    # Without guided backpropagation among the methods: the numbers alone.
    rank = {"saliency": [1.0, 0.9, 0.8, 0.7, 0.6, 0.55, 0.52, 0.5]}
    alone = sanity_reading(sanity_json(rank))
    assert "Guided" not in alone and "fall" not in alone
    assert alone.endswith("With every layer re-initialized (down to CONV1): saliency 0.50.")
    # A layer that is no stage (Grad-CAM at a pool layer): the last stage only.
    pooled = sanity_reading(sanity_json(RANK, layer="POOL3"))
    assert pooled.startswith("With every layer re-initialized (down to CONV1)")
    assert "(0.55) with every layer random" in pooled


@pytest.mark.parametrize("case", ["no weights", "no data"])
def test_the_analyses_missing_are_listed_with_their_commands(case, runs, tiny_cifar, tmp_path,
                                                             monkeypatch):
    monkeypatch.delenv("CIFAR10_DIR", raising=False)
    calls = []
    fake_analyses(monkeypatch, calls)
    fake_explanations(monkeypatch, calls)
    data = str(tiny_cifar) if case == "no weights" else str(tmp_path / "gone")
    featured = make_run(tmp_path / "featured", Config(epochs=EPOCHS, data_dir=data),
                        weights=case == "no data")
    # No --data-dir: the main run's copy is there, the featured run's (for "no data") is not.
    markdown = build_report([str(runs[0])], tmp_path / "report",
                            featured=str(featured))["markdown"].read_text()
    missing = {row["what"]: row for row in table(markdown, "what")}
    data_flag = str(tiny_cifar) if case == "no weights" else "DATA"
    why = (f"{featured} has no best.weights.h5" if case == "no weights"
           else "no CIFAR-10 copy: pass --data-dir")
    expected = {EXPLANATION_TITLES[0]: "explain.py gradcam",
                EXPLANATION_TITLES[1]: "explain.py activation-max",
                EXPLANATION_TITLES[2]: "explain.py sanity",
                "Task VII: interesting neurons": "neurons.py",
                "Task VII: guided backpropagation": "guided_backprop.py"}
    for title, script in expected.items():
        assert missing[title] == {"what": title, "why": why, "command":
                                  f"python {script} --run {featured} --data-dir {data_flag}"}
    if case == "no weights":
        assert missing["Task VI: the CONV1 filters"]["command"] == \
            f"python visualize_filters.py --run {featured}"
        assert calls == []
    else:  # the filters need no data
        assert calls == [(featured, None)]
    assert "evaluate.py's test accuracy of the best weights" not in missing  # the main run's


@pytest.mark.slow
def test_cli_features_another_run(tiny_run, tiny_cifar, tmp_path):
    featured = tmp_path / "featured"
    shutil.copytree(tiny_run, featured)
    out = tmp_path / "report"
    result = run_script("report.py", str(tiny_run), "--featured", str(featured), "--out",
                        str(out), "--no-analyses")
    assert result.returncode == 0, result.stderr[-3000:]
    markdown = (out / "report.md").read_text()
    assert [row["run"] for row in table(markdown, "run")] == ["tiny", "featured"]
    missing = {row["what"]: row for row in table(markdown, "what")}
    assert missing[EXPLANATION_TITLES[0]] == {
        "what": EXPLANATION_TITLES[0], "why": "skipped (--no-analyses)",
        "command": f"python explain.py gradcam --run {featured} --data-dir {tiny_cifar}"}
    assert json.loads((out / "report.json").read_text())["featured"] == "featured"


def seeds_folder_of_two(folder: Path) -> Path:
    """A study.py seeds folder: seed-0 and seed-1 with hand-set test accuracies per epoch (the
    seconds are history()'s 31, 32, 33 and 34)."""
    for seed, accuracies in ((1, [0.80, 0.83, 0.86, 0.89]), (0, [0.85, 0.88, 0.91, 0.94])):
        run = make_run(folder / f"seed-{seed}", Config(epochs=EPOCHS, seed=seed))
        rows = [{**row, "test_accuracy": accuracy}
                for row, accuracy in zip(history(0.0), accuracies, strict=True)]
        run_folder.write_history(run / run_folder.HISTORY, rows)
    return folder


def test_the_minutes_section_sets_the_seeds_beside_the_main_and_featured_runs(runs, tmp_path):
    seeds = seeds_folder_of_two(tmp_path / "fast")
    out = tmp_path / "report"
    pages = build_report([str(runs[0])], out, featured=str(runs[1]), analyses=False,
                         seeds=seeds)
    markdown = pages["markdown"].read_text()

    def minutes(seconds: float) -> str:
        return f"{seconds / 60:.1f}"

    never = {f"minutes to {t}% test": "not reached" for t in (85, 87, 88)}
    assert table(markdown, "run | epochs | minutes") == [
        {"run": "main", "epochs": "4", "minutes": minutes(130), "last test accuracy": "37.00%",
         **never},
        {"run": "bn-no-dropout", "epochs": "4", "minutes": minutes(130),
         "last test accuracy": "42.00%", **never},
        {"run": "fast/seed-0", "epochs": "4", "minutes": minutes(130),
         "last test accuracy": "94.00%", "minutes to 85% test": minutes(31),
         "minutes to 87% test": minutes(63), "minutes to 88% test": minutes(63)},
        {"run": "fast/seed-1", "epochs": "4", "minutes": minutes(130),
         "last test accuracy": "89.00%", "minutes to 85% test": minutes(96),
         "minutes to 87% test": minutes(130), "minutes to 88% test": minutes(130)}]
    assert "![minutes-to-accuracy](figures/minutes-to-accuracy.png)" in markdown
    assert (out / "figures" / "minutes-to-accuracy.pdf").is_file()
    numbers = json.loads(pages["json"].read_text())["analyses"]["Minutes to accuracy"]
    assert numbers["minutes_to_test_accuracy"]["fast/seed-1"] == {
        "0.85": 96 / 60, "0.87": 130 / 60, "0.88": 130 / 60}
    assert numbers["minutes_to_test_accuracy"]["main"] == {"0.85": None, "0.87": None,
                                                           "0.88": None}


def test_the_budget_section_sets_each_budget_beside_the_other_recipes_at_that_epoch(runs,
                                                                                    tmp_path):
    published = tmp_path / "published"
    seeds = seeds_folder_of_two(published / "budget-4")
    write_evaluation(seeds / "seed-0", 0.90)  # evaluate.py's number wins over the history's
    make_run(published / "budget-2", Config(epochs=2))  # one run, not a seeds study
    (published / "budget-x").mkdir()  # not a budget: ignored
    out = tmp_path / "report"
    pages = build_report([str(runs[0])], out, featured=str(runs[1]), analyses=False,
                         seeds=seeds)
    rows = table(pages["markdown"].read_text(),
                 "epochs | budget recipe: test accuracy (seeds)")
    # best epochs (validation) are 2: test 0.31 for budget-2, 0.83 for budget-4's seed 1
    assert rows == [
        {"epochs": "2", "budget recipe: test accuracy (seeds)": "31.00% (1)",
         "main at that epoch of its schedule": "31.00%",
         "bn-no-dropout at that epoch of its schedule": "36.00%"},
        {"epochs": "4", "budget recipe: test accuracy (seeds)": "86.50% ± 4.95 (2)",
         "main at that epoch of its schedule": "37.00%",
         "bn-no-dropout at that epoch of its schedule": "42.00%"}]
    assert (out / "figures" / "accuracy-at-budget.png").is_file()
    numbers = json.loads(pages["json"].read_text())["analyses"]["Accuracy at a budget of epochs"]
    assert numbers["budget_test_accuracy"] == {"2": [pytest.approx(0.31)],
                                               "4": [0.90, pytest.approx(0.83)]}


def test_the_minutes_section_only_with_a_seeds_folder(runs, tmp_path, monkeypatch):
    plain = build_report([str(runs[0])], tmp_path / "a", analyses=False)
    assert "## Minutes to accuracy" not in plain["markdown"].read_text()
    (tmp_path / "empty").mkdir()
    empty = build_report([str(runs[0])], tmp_path / "b", analyses=False,
                         seeds=tmp_path / "empty")
    missing = {row["what"]: row for row in table(empty["markdown"].read_text(), "what")}
    assert missing[f"the seed runs of {tmp_path / 'empty'}"] == {
        "what": f"the seed runs of {tmp_path / 'empty'}",
        "why": "no seed-N run folder with a finished epoch",
        "command": f"python study.py seeds --preset PRESET --out {tmp_path / 'empty'}"}
    # report.py's --seeds: the folder given, else the published budget seeds where they exist.
    monkeypatch.setattr(seed_summary, "BUDGET_SEEDS", tmp_path / "published")
    assert seed_summary.report_seeds(None) is None
    seeds_folder_of_two(tmp_path / "published")
    assert seed_summary.report_seeds(None) == tmp_path / "published"
    assert seed_summary.report_seeds(str(tmp_path / "empty")) == tmp_path / "empty"
    with pytest.raises(RunError, match="no run folder 'nowhere'"):
        seed_summary.report_seeds("nowhere")
    monkeypatch.chdir(tmp_path)  # inside the working folder: named as a user would type it
    assert seed_summary.report_seeds(None) == Path("published")


def test_a_run_given_twice_is_one_row_and_runs_of_one_name_are_told_apart(runs, tmp_path):
    twin = make_run(tmp_path / "elsewhere" / "main", Config(epochs=EPOCHS), shift=0.1)
    pages = build_report([str(runs[0]), str(runs[0]), str(twin)], tmp_path / "report",
                         analyses=False)
    shown = [row["run"] for row in table(pages["markdown"].read_text(), "run")]
    assert shown == ["runs/main", "elsewhere/main"]
    assert [r["run"] for r in json.loads(pages["json"].read_text())["runs"]] == shown


def test_a_long_run_name_is_shortened_in_figures_but_not_in_the_tables(tmp_path, monkeypatch):
    from reporting import plots
    from reporting.run_records import load_run

    name = "r" * 100 + "-end"
    run = load_run(str(make_run(tmp_path / name, Config(epochs=EPOCHS))))
    monkeypatch.setattr(plots, "save_plot", lambda fig, *args: fig)
    title = plots.plot_curves(run, "accuracy", tmp_path).axes[0].get_title()
    assert title == f"model accuracy ({'r' * 19}…{'r' * 15}-end)"
    assert plots.shortened("paper") == "paper"
