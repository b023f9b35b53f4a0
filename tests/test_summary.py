"""The report's Task IV table (models/summary.py, `evaluate.py --summary`)."""

from __future__ import annotations

import json

import pytest
from conftest import run_script

import evaluate
from models.network import build_model
from models.summary import summary_markdown, summary_rows, summary_text, summary_totals

# The report's table (Task IV), row by row: layer, input shape, output shape, parameters.
REPORT_TABLE = [
    ("input", (None, 32, 32, 3), (None, 32, 32, 3), 0),
    ("CONV1", (None, 32, 32, 3), (None, 32, 32, 64), 1792),
    ("POOL1", (None, 32, 32, 64), (None, 16, 16, 64), 0),
    ("CONV2", (None, 16, 16, 64), (None, 16, 16, 128), 73856),
    ("POOL2", (None, 16, 16, 128), (None, 8, 8, 128), 0),
    ("CONV3", (None, 8, 8, 128), (None, 8, 8, 256), 295168),
    ("CONV4", (None, 8, 8, 256), (None, 8, 8, 256), 590080),
    ("POOL3", (None, 8, 8, 256), (None, 4, 4, 256), 0),
    ("flatten", (None, 4, 4, 256), (None, 4096), 0),
    ("FC1", (None, 4096), (None, 1024), 4195328),
    ("FC2", (None, 1024), (None, 1024), 1049600),
    ("SOFTMAX", (None, 1024), (None, 10), 10250),
    ("BN", (None, 10), (None, 10), 40),
    ("softmax", (None, 10), (None, 10), 0),
]
REPORT_TOTALS = {"total": 6_216_114, "trainable": 6_216_094, "non_trainable": 20, "conv": 960_896,
                 "dense": 5_255_218, "conv_neurons": 131_072, "fc_neurons": 2_058}


@pytest.fixture(scope="module")
def model():
    return build_model()


def test_totals_equal_the_reports(model):
    assert summary_totals(model) == REPORT_TOTALS


def test_rows_equal_the_reports_table(model):
    rows = {row["layer"]: row for row in summary_rows(model)}
    for name, input_shape, output_shape, params in REPORT_TABLE:
        assert (rows[name]["input_shape"], rows[name]["output_shape"], rows[name]["params"]) == (
            input_shape, output_shape, params), name
    assert rows["CONV1"]["type"] == "Conv2D" and rows["BN"]["type"] == "BatchNormalization"


def test_every_layer_has_a_row(model):
    rows = summary_rows(model)
    assert [row["layer"] for row in rows] == [layer.name for layer in model.layers]
    assert rows[1] == {"layer": "standardize", "type": "Rescaling",
                       "input_shape": (None, 32, 32, 3), "output_shape": (None, 32, 32, 3),
                       "params": 0}
    assert [row["params"] for row in rows if row["type"] == "Dropout"] == [0] * 6
    assert sum(row["params"] for row in rows) == REPORT_TOTALS["total"]


@pytest.mark.parametrize(("batchnorm", "expected"), [
    # Four more BatchNormalization layers of 64, 128, 256 and 256 channels, 4 numbers each, 2 of
    # them frozen.
    ("all", {"total": 6_216_114 + 4 * 704, "trainable": 6_216_094 + 2 * 704,
             "non_trainable": 20 + 2 * 704, "conv": 960_896 + 4 * 704, "dense": 5_255_218,
             "conv_neurons": 131_072, "fc_neurons": 2_058}),
    ("none", {"total": 6_216_114 - 40, "trainable": 6_216_094 - 20, "non_trainable": 0,
              "conv": 960_896, "dense": 5_255_218 - 40, "conv_neurons": 131_072,
              "fc_neurons": 2_058}),
])
def test_totals_follow_the_variant(batchnorm, expected):
    assert summary_totals(build_model(batchnorm)) == expected


def test_no_dropout_layers_change_no_numbers():
    model = build_model(conv_dropout=0, fc_dropout=0)
    assert summary_totals(model) == REPORT_TOTALS
    assert "Dropout" not in {row["type"] for row in summary_rows(model)}


def test_text_shows_the_table_and_how_the_totals_add_up(model):
    text = summary_text(model)
    lines = text.splitlines()
    conv1 = next(line for line in lines if line.startswith("CONV1 (Conv2D)"))
    assert conv1.split("  ")[0] == "CONV1 (Conv2D)"
    assert "(None, 32, 32, 3)" in conv1 and "(None, 32, 32, 64)" in conv1
    assert conv1.endswith(" 1,792")
    assert "Total params:                          6,216,114" in lines
    assert "Trainable params:                      6,216,094" in lines
    assert "Non-trainable params:                  20 (moving_mean, moving_variance of BN)" in lines
    assert "Params in the convolutional layers:    960,896 (CONV1, CONV2, CONV3, CONV4)" in lines
    assert "Params in the fully connected layers:  5,255,218 (FC1, FC2, SOFTMAX, BN)" in lines
    assert "Neurons in the fully connected layers: 1024 + 1024 + 10 = 2,058" in lines
    assert ("Neurons in the convolutional layers:   64*32*32 + 128*16*16 + 256*8*8 + 256*8*8 "
            "= 131,072") in lines


def test_markdown_table(model):
    lines = summary_markdown(model).splitlines()
    assert lines[0] == "| Layer | Type | Input shape | Output shape | Params |"
    table = lines[2:lines.index("")]
    assert len(table) == len(model.layers)
    assert table[0] == "| input | InputLayer | (None, 32, 32, 3) | (None, 32, 32, 3) | 0 |"
    assert "| CONV4 | Conv2D | (None, 8, 8, 256) | (None, 8, 8, 256) | 590,080 |" in table
    assert "| FC1 | Dense | (None, 4096) | (None, 1024) | 4,195,328 |" in table
    assert "| Total params | 6,216,114 |" in lines
    assert ("| Neurons in the convolutional layers | 64*32*32 + 128*16*16 + 256*8*8 + 256*8*8 "
            "= 131,072 |") in lines


@pytest.mark.slow
def test_evaluate_py_summary_prints_and_writes_the_table_quietly(tmp_path, model):
    result = run_script("evaluate.py", "--summary", "--out", str(tmp_path / "tables"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr == ""  # TensorFlow started quietly
    assert result.stdout.startswith(summary_text(model))
    assert result.stdout.endswith(f"wrote {tmp_path / 'tables' / 'parameters.md'}\n")
    assert (tmp_path / "tables" / "parameters.md").read_text() == summary_markdown(model)


def test_evaluate_summary_needs_no_weights(tmp_path, monkeypatch, capsys, model):
    monkeypatch.chdir(tmp_path)  # the default --out is the current folder
    evaluate.main(["--summary"])
    assert capsys.readouterr().out == summary_text(model) + "wrote parameters.md\n"
    assert (tmp_path / "parameters.md").read_text() == summary_markdown(model)


def test_evaluate_summary_of_a_run_describes_its_variant(tmp_path, capsys):
    run = tmp_path / "bn-run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"batchnorm": "all", "conv_dropout": 0.0}))
    evaluate.main([str(run), "--summary", "--out", str(tmp_path / "out")])
    expected = build_model("all", conv_dropout=0.0)
    assert capsys.readouterr().out.startswith(summary_text(expected))
    assert (tmp_path / "out" / "parameters.md").read_text() == summary_markdown(expected)


def test_a_failed_write_of_parameters_md_leaves_the_old_one_whole(tmp_path, monkeypatch):
    from test_bench import half_then_full_disk

    (tmp_path / "parameters.md").write_text("the old table\n")
    half_then_full_disk(monkeypatch)
    with pytest.raises(OSError, match="No space left on device"):
        evaluate.main(["--summary", "--out", str(tmp_path)])
    assert (tmp_path / "parameters.md").read_text() == "the old table\n"
    assert [p.name for p in tmp_path.iterdir()] == ["parameters.md"]
