"""The run folder: the one place that knows its file names, formats and how to read them back.

A run folder (logs/NAME) holds config.json, history.csv, train.log, best.weights.h5,
last.weights.h5, checkpoint.keras, tensorboard/ where the run writes event files, and what the
other scripts write into eval/ and figures/; while a training runs, its claim on the folder
(.lock). Everything that reads or writes those files goes through this package.

Checking and loading weights (weights.py) loads Keras, so it is imported by its own name,
`from runs.weights import load_network`; the names here cost no TensorFlow start.
"""

from runs.files import atomic_save, atomic_write_text, sha256
from runs.folder import (
    CHECKPOINT,
    CONFIG,
    EVAL,
    FIGURES,
    HISTORY,
    HISTORY_COLUMNS,
    LOCK,
    LOGS,
    TENSORBOARD,
    TRAIN_LOG,
    WEIGHTS,
    Claim,
    RunError,
    append_log,
    best_row,
    claim_folder,
    claim_new_folder,
    discard_staged,
    epochs_done,
    eval_json,
    find_run,
    history_text,
    model_bytes,
    publish_weights,
    read_checkpoint_state,
    read_config,
    read_evaluation,
    read_history,
    read_runtime,
    recover,
    run_folder,
    save_checkpoint,
    staged_name,
    write_history,
)

__all__ = ["CHECKPOINT", "CONFIG", "EVAL", "FIGURES", "HISTORY", "HISTORY_COLUMNS", "LOCK", "LOGS",
           "TENSORBOARD", "TRAIN_LOG", "WEIGHTS", "Claim", "RunError", "append_log", "atomic_save",
           "atomic_write_text", "best_row", "claim_folder", "claim_new_folder", "discard_staged",
           "epochs_done", "eval_json", "find_run", "history_text", "model_bytes",
           "publish_weights", "read_checkpoint_state", "read_config", "read_evaluation",
           "read_history", "read_runtime", "recover", "run_folder", "save_checkpoint", "sha256",
           "staged_name", "write_history"]
