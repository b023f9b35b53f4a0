"""evaluate.py's scoring of a run's weights, as study.py scores each seed's too: the grader's
report printed first (so that a failed write keeps the numbers), then the JSON and the confusion
matrix written, and their paths printed."""

from __future__ import annotations

from pathlib import Path


def evaluate_and_report(target: str, *, which: str = "best", split: str = "test",
                        data_dir: str | None = None, batch_size: int = 500,
                        tta: str | None = None, json_path: Path | None = None,
                        out: str | None = None) -> None:
    """Score target (a run folder or a weights file) as evaluation.scoring.evaluate_run does;
    the files go to json_path, else into out, else into the run's eval/
    (evaluation.present.default_json_path)."""
    # Keras: after the script's flags are parsed.
    from evaluation.present import default_json_path, format_report, write_results
    from evaluation.scoring import evaluate_run

    result = evaluate_run(target, which=which, split=split, data_dir=data_dir,
                          batch_size=batch_size, tta=tta)
    json_path = json_path or default_json_path(result, out)
    print(format_report(result), flush=True)
    paths = write_results(result, json_path)
    print("", *(f"wrote {path}" for path in paths), sep="\n")
