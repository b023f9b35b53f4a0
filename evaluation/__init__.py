"""Evaluation of a run's weights in float32: predictions, scores, the grader's report.

scoring.py decides the numbers (evaluate_run and the pieces it is made of); present.py turns them
into the one-screen text, the confusion-matrix PNG and the JSON. Both load Keras, so they are
imported by their own name (`from evaluation.scoring import evaluate_run`); the names here cost
no TensorFlow start. No command-line notions here: evaluate.py parses the flags and calls these.
"""

from evaluation.errors import TTA_CHOICES, EvaluationError

__all__ = ["TTA_CHOICES", "EvaluationError"]
