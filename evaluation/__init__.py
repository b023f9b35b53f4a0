"""Evaluation of a run's weights in float32: predictions, scores, the grader's report.

scoring.py decides the numbers (evaluate_run and the pieces it is made of); present.py turns them
into the one-screen text, the confusion-matrix PNG and the JSON. No command-line notions here:
evaluate.py parses the flags and calls these.
"""

from evaluation.errors import TTA_CHOICES, EvaluationError

_PRESENT = ("default_json_path", "format_report", "plot_confusion", "write_results")
_SCORING = ("EPSILON", "TOP_CONFUSIONS", "deterministic_kernels", "evaluate_run", "nll", "predict",
            "run_config", "score", "weights_name")


def __getattr__(name: str):
    # Scoring and presenting import Keras, so they load on first use: a script answers --help and
    # a bad flag before TensorFlow starts.
    if name in _PRESENT or name in _SCORING:
        from evaluation import present, scoring

        return getattr(present if name in _PRESENT else scoring, name)
    raise AttributeError(f"module 'evaluation' has no attribute {name!r}")


__all__ = ["EPSILON", "TOP_CONFUSIONS", "TTA_CHOICES", "EvaluationError", "default_json_path",
           "deterministic_kernels", "evaluate_run", "format_report", "nll", "plot_confusion",
           "predict", "run_config", "score", "weights_name", "write_results"]
