"""Evaluation of a run's weights in float32: predictions, scores, the grader's report.

scoring.py decides the numbers (evaluate_run and the pieces it is made of); present.py turns them
into the one-screen text, the confusion-matrix PNG and the JSON. No command-line notions here:
evaluate.py parses the flags and calls these.
"""

from evaluation.errors import EvaluationError
from evaluation.present import default_json_path, format_report, plot_confusion, write_results
from evaluation.scoring import (
    EPSILON,
    TOP_CONFUSIONS,
    TTA_CHOICES,
    deterministic_kernels,
    evaluate_run,
    nll,
    predict,
    run_config,
    score,
    weights_name,
)

__all__ = ["EPSILON", "TOP_CONFUSIONS", "TTA_CHOICES", "EvaluationError", "default_json_path",
           "deterministic_kernels", "evaluate_run", "format_report", "nll", "plot_confusion",
           "predict", "run_config", "score", "weights_name", "write_results"]
