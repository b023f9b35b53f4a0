"""What evaluation can be asked for and its one error type, without Keras: the command line
builds its flags from TTA_CHOICES and turns EvaluationError into `error: ...`."""

TTA_CHOICES = ("flip",)  # test-time augmentations evaluate_run knows


class EvaluationError(ValueError):
    """An evaluation was asked for something it cannot do (an unknown test-time augmentation)."""
