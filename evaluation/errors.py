"""The one error type of the evaluation package; the command line turns it into `error: ...`."""


class EvaluationError(ValueError):
    """An evaluation was asked for something it cannot do (an unknown test-time augmentation)."""
