"""Train the report's CIFAR-10 network from the shell; each run gets its own folder under logs/.

    python train.py --data-dir ../shared/data/cifar-10-jpeg --run report
    python train.py --run report --resume          # continue an interrupted run

The run folder holds config.json (every setting, data source, seed, versions), history.csv (one
row per epoch: learning rate, train/val/test loss and accuracy, seconds), best.weights.h5 (best
validation accuracy), last.weights.h5 and checkpoint.keras (weights, optimizer and schedule state,
for --resume). Every file is written atomically, so a killed run loses at most the current epoch.
"""

from __future__ import annotations

import models  # noqa: F401 - first, so that TensorFlow starts quietly

# isort: split
import argparse
import contextlib
import csv
import dataclasses
import io
import json
import os
import platform
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import keras
import numpy as np

from data import load_cifar10, make_dataset, select_split
from models.cli import LOGS, UserError, main_with_errors
from models.config import PRESETS, Config
from models.losses import make_loss
from models.optimizers import FusedAdam, FusedAdamW
from models.runs import atomic_save, build_from_config

HISTORY_COLUMNS = ("epoch", "learning_rate", "train_loss", "train_accuracy", "val_loss",
                   "val_accuracy", "test_loss", "test_accuracy", "seconds")
STATE_ENTRY = "run_state.json"  # stored inside checkpoint.keras, so weights and state commit together
EVAL_BATCH_SIZE = 500
PRECISION_POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = Config()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                argument_default=argparse.SUPPRESS)
    p.add_argument("--run", help="run name: the folder OUT/NAME (default: the date and time)")
    p.add_argument("--out", default=str(LOGS), help="folder that holds run folders (default: logs/)")
    p.add_argument("--resume", action="store_true", help="continue the run from its checkpoint")
    p.add_argument("--preset", choices=sorted(PRESETS), help=f"named recipe (default: {d.preset})")
    p.add_argument("--data-dir", help="CIFAR-10 folder or tar.gz (default: $CIFAR10_DIR, else download)")
    p.add_argument("--batchnorm", choices=("output", "all", "none"), help=f"batch-norm placement ({d.batchnorm})")
    p.add_argument("--dropout", type=float, help="dropout rate for conv and FC layers alike")
    p.add_argument("--conv-dropout", type=float, help=f"dropout after conv blocks ({d.conv_dropout}; 0 removes)")
    p.add_argument("--fc-dropout", type=float, help=f"dropout after FC1 and FC2 ({d.fc_dropout}; 0 removes)")
    p.add_argument("--optimizer", choices=("adam", "adamw", "sgd", "rmsprop"), help=f"({d.optimizer})")
    p.add_argument("--learning-rate", "--lr", type=float, help=f"initial learning rate ({d.learning_rate})")
    p.add_argument("--momentum", type=float, help=f"SGD momentum ({d.momentum})")
    p.add_argument("--weight-decay", type=float, help=f"decoupled weight decay ({d.weight_decay})")
    p.add_argument("--label-smoothing", type=float, help=f"({d.label_smoothing})")
    p.add_argument("--schedule", choices=("plateau", "cosine"), help=f"learning-rate schedule ({d.schedule})")
    p.add_argument("--patience", type=int, help=f"plateau epochs before the rate decays ({d.patience})")
    p.add_argument("--decay-factor", type=float, help=f"rate multiplier on a plateau ({d.decay_factor})")
    p.add_argument("--warmup-epochs", type=int, help=f"linear warm-up for cosine ({d.warmup_epochs})")
    p.add_argument("--batch-size", type=int, help=f"({d.batch_size})")
    p.add_argument("--epochs", type=int, help=f"({d.epochs})")
    p.add_argument("--early-stop", type=int, help="stop after N epochs without a better val accuracy (0: never)")
    p.add_argument("--no-augment", dest="augment", action="store_false", help="no translation, flips or Cutout")
    p.add_argument("--translate", type=int, help=f"largest random shift in pixels ({d.translate})")
    p.add_argument("--cutout", type=int, help=f"side of the random square Cutout zeroes (0: none; {d.cutout})")
    p.add_argument("--val-size", type=int, help=f"last N training images for validation ({d.val_size})")
    p.add_argument("--limit", type=int, help="train on the first N training images only (smoke runs)")
    p.add_argument("--seed", type=int, help=f"({d.seed})")
    p.add_argument("--precision", choices=("auto", *PRECISION_POLICIES), help="auto: bf16 on CPUs with "
                   "AVX512-BF16/AMX, fp16 on GPUs, else fp32")
    p.add_argument("--xla", action="store_true", help="compile the training step with XLA")
    p.add_argument("--strategy", choices=("auto", "mirrored", "multiworker"),
                   help="tf.distribute strategy (auto: mirrored over several GPUs, multiworker with TF_CONFIG)")
    p.add_argument("--cpu-devices", type=int, default=1,
                   help="split the CPU into N logical devices (try --strategy mirrored without GPUs)")
    p.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2), help="Keras progress output")
    return p.parse_args(argv)


def make_config(args: argparse.Namespace) -> Config:
    """Defaults, then the preset, then explicit flags."""
    given = {k: v for k, v in vars(args).items() if k in {f.name for f in dataclasses.fields(Config)}}
    if "dropout" in args:
        given = {"conv_dropout": args.dropout, "fc_dropout": args.dropout, **given}
    preset = given.get("preset", "report")
    return Config(**{**PRESETS[preset], **given})


# ---------------------------------------------------------------------------------------------
# Devices, precision and distribution


def has_gpu() -> bool:
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if keras.backend.backend() == "jax":
        import jax

        return jax.default_backend() == "gpu"
    return False


def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str) -> str:
    if precision != "auto":
        return precision
    if has_gpu():
        return "fp16"
    return "bf16" if cpu_has_bf16() else "fp32"


def make_strategy(name: str, cpu_devices: int):
    """A tf.distribute strategy, or None for Keras' default single-device training."""
    if keras.backend.backend() != "tensorflow":
        if name != "auto":
            raise UserError(f"--strategy {name} needs the TensorFlow backend")
        return None
    import tensorflow as tf

    if cpu_devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_devices)
    if name == "auto":
        name = "multiworker" if "TF_CONFIG" in os.environ else (
            "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "none")
    if name == "multiworker":
        return _reduce_each(tf.distribute.MultiWorkerMirroredStrategy())
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    return None


def _reduce_each(strategy):
    """Work around keras-team/keras#20585: Keras 3's fit() under MultiWorkerMirroredStrategy hands
    strategy.reduce a whole (images, labels) batch, and asks for axis=0 on scalar metrics; the
    strategy takes neither. Reduce tensor by tensor, scalars across replicas only. The fix stays on
    this one strategy object; nothing global is patched."""
    import tensorflow as tf

    reduce_one = strategy.reduce

    def rank(value) -> int:
        local = value.values[0] if isinstance(value, tf.distribute.DistributedValues) else value
        return tf.convert_to_tensor(local).shape.rank

    def reduce_each(op, value, axis=None):
        return tf.nest.map_structure(lambda v: reduce_one(op, v, axis if rank(v) else None), value)

    strategy.reduce = reduce_each
    return strategy


def is_chief(strategy) -> bool:
    """Only the chief worker writes the run folder; other workers train into a scratch folder."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0
                                             and "chief" not in resolver.cluster_spec().as_dict())


# ---------------------------------------------------------------------------------------------
# Model, optimizer, loss


def make_optimizer(config: Config, steps_per_epoch: int):
    lr = config.learning_rate
    if config.schedule == "cosine":
        warmup = config.warmup_epochs * steps_per_epoch
        lr = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=lr / 10 if warmup else lr, warmup_target=lr if warmup else None,
            warmup_steps=warmup, decay_steps=max(1, config.epochs * steps_per_epoch - warmup))
    decay = config.weight_decay or None
    if config.optimizer == "adam":
        return FusedAdam(lr, weight_decay=decay)
    if config.optimizer == "adamw":
        return FusedAdamW(lr, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=config.momentum, nesterov=True, weight_decay=decay)
    return keras.optimizers.RMSprop(lr, weight_decay=decay)


def build_compiled(config: Config, steps_per_epoch: int):
    model = build_from_config(config)
    model.compile(optimizer=make_optimizer(config, steps_per_epoch), loss=make_loss(config.label_smoothing),
                  metrics=["accuracy"], jit_compile=config.xla or "auto")
    return model


# ---------------------------------------------------------------------------------------------
# Callbacks: test evaluation, plateau decay that resumes, and the run folder's files


def make_callbacks(config: Config, run: Path, test_data, state: dict, chief: bool):
    # Published weights hold the network alone; Keras' save_weights would add the optimizer's
    # moments (3x the size). A twin without an optimizer is saved instead.
    twin = build_from_config(config)

    class EpochRecorder(keras.callbacks.Callback):
        """Adds test loss/accuracy, the epoch's learning rate and seconds to the epoch's logs."""

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()
            self.learning_rate = current_learning_rate(self.model)

        def on_epoch_end(self, epoch, logs=None):
            test = self.model.evaluate(test_data, verbose=0, return_dict=True)
            logs["test_loss"], logs["test_accuracy"] = test["loss"], test["accuracy"]
            logs["learning_rate"] = self.learning_rate
            logs["seconds"] = time.perf_counter() - self.start

    class ResumablePlateau(keras.callbacks.ReduceLROnPlateau):
        """ReduceLROnPlateau whose counters survive an interruption (saved in the checkpoint)."""

        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            saved = state.get("plateau")
            if saved:
                self.wait, self.best, self.cooldown_counter = saved["wait"], saved["best"], saved["cooldown"]

    class RunWriter(keras.callbacks.Callback):
        """Writes history.csv, the weights and the checkpoint after every epoch, atomically."""

        def on_epoch_end(self, epoch, logs=None):
            row = history_row(epoch + 1, logs)
            state["history"].append(row)
            state["epoch"] = epoch + 1
            if plateau is not None:
                state["plateau"] = {"wait": plateau.wait, "best": float(plateau.best),
                                    "cooldown": plateau.cooldown_counter}
            improved = row["val_accuracy"] > state.get("best_val_accuracy", -1.0)
            if improved:
                state["best_val_accuracy"], state["best_epoch"] = row["val_accuracy"], epoch + 1
            if chief:
                twin.set_weights(self.model.get_weights())
                save_epoch(self.model, twin, run, state, improved)
            print(summary_line(row, config.epochs, improved), flush=True)
            if config.early_stop and epoch + 1 - state["best_epoch"] >= config.early_stop:
                print(f"early stop: no better validation accuracy for {config.early_stop} epochs")
                self.model.stop_training = True

    plateau = None
    if config.schedule == "plateau":
        plateau = ResumablePlateau(monitor="val_loss", factor=config.decay_factor,
                                   patience=config.patience, min_lr=1e-6, verbose=1)
    # Order matters: the recorder fills the logs the others read; the writer saves the plateau's
    # state after it has updated.
    return [c for c in (EpochRecorder(), plateau, RunWriter()) if c is not None]


def current_learning_rate(model) -> float:
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def history_row(epoch: int, logs: dict) -> dict:
    values = {"epoch": epoch, "learning_rate": logs["learning_rate"], "train_loss": logs["loss"],
              "train_accuracy": logs["accuracy"], "val_loss": logs["val_loss"],
              "val_accuracy": logs["val_accuracy"], "test_loss": logs["test_loss"],
              "test_accuracy": logs["test_accuracy"], "seconds": logs["seconds"]}
    return {k: (v if k == "epoch" else float(v)) for k, v in values.items()}


def summary_line(row: dict, epochs: int, improved: bool) -> str:
    return (f"epoch {row['epoch']}/{epochs}  lr {row['learning_rate']:.2e}  "
            f"train {row['train_loss']:.4f}/{row['train_accuracy']:.4f}  "
            f"val {row['val_loss']:.4f}/{row['val_accuracy']:.4f}  "
            f"test {row['test_loss']:.4f}/{row['test_accuracy']:.4f}  "
            f"{row['seconds']:.1f}s{'  *best' if improved else ''}")


def save_epoch(model, twin, run: Path, state: dict, improved: bool) -> None:
    """Weights first, then the checkpoint (the commit point of the epoch), then history.csv."""
    atomic_save(run / "last.weights.h5", twin.save_weights)
    if improved:
        atomic_save(run / "best.weights.h5", twin.save_weights)
    atomic_save(run / "checkpoint.keras", lambda tmp: save_checkpoint(model, tmp, state))
    atomic_save(run / "history.csv", lambda tmp: write_history(Path(tmp), state["history"]))


def save_checkpoint(model, path: str, state: dict) -> None:
    model.save(path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(STATE_ENTRY, json.dumps(state))


def read_checkpoint_state(path: Path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read(STATE_ENTRY))


def write_history(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue())


# ---------------------------------------------------------------------------------------------
# The run


def prepare_run(args: argparse.Namespace) -> tuple[Path, Config, dict]:
    """The run folder, its config and the state to resume from (empty for a new run)."""
    name = getattr(args, "run", None) or time.strftime("%Y%m%d-%H%M%S")
    run = Path(args.out) / name
    checkpoint = run / "checkpoint.keras"
    if getattr(args, "resume", False):
        if not checkpoint.exists():
            raise UserError(f"nothing to resume in {run}: it has no checkpoint.keras")
        config = Config.load(run / "config.json")
        changed = set(vars(args)) - {"run", "out", "resume", "epochs", "data_dir", "verbose", "cpu_devices"}
        if changed:
            raise UserError(f"--resume continues {run} with its config.json; only --epochs and "
                            f"--data-dir may change (got --{', --'.join(sorted(changed)).replace('_', '-')})")
        config.epochs = getattr(args, "epochs", config.epochs)
        config.data_dir = getattr(args, "data_dir", config.data_dir)
        runtime = json.loads((run / "config.json").read_text()).get("runtime", {})
        atomic_save(run / "config.json", lambda tmp: config.save(Path(tmp), runtime))
        return run, config, read_checkpoint_state(checkpoint)
    if checkpoint.exists() or (run / "history.csv").exists():
        raise UserError(f"{run} already holds a run: pass --resume to continue it, or another --run")
    return run, make_config(args), {"epoch": 0, "history": []}


def runtime_info(data_source: str, precision: str, strategy, n_train: int) -> dict:
    info = {"data_source": data_source, "train_images": n_train, "precision_used": precision,
            "backend": keras.backend.backend(), "keras": keras.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "replicas": getattr(strategy, "num_replicas_in_sync", 1),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": " ".join(sys.argv)}
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
    return info


def load_splits(config: Config):
    data = load_cifar10(config.data_dir)
    return data, *(select_split(data, split, config.val_size, config.limit) for split in ("train", "val", "test"))


def train(args: argparse.Namespace) -> Path:
    run, config, state = prepare_run(args)
    strategy = make_strategy(config.strategy, getattr(args, "cpu_devices", 1))
    chief = is_chief(strategy)
    if not chief:  # other workers of a multi-worker run write into a scratch folder
        run = Path(tempfile.mkdtemp(prefix="cifar10-worker-")) / run.name
    keras.utils.set_random_seed(config.seed + state["epoch"])
    precision = resolve_precision(config.precision)
    keras.mixed_precision.set_global_policy(PRECISION_POLICIES[precision])
    data, (x_train, y_train), (x_val, y_val), (x_test, y_test) = load_splits(config)
    train_data = make_dataset(x_train, y_train, config.batch_size, training=True, augment=config.augment,
                              translate=config.translate, flip=config.flip, cutout=config.cutout,
                              seed=config.seed + state["epoch"])
    # Evaluation batches are larger than training's: the same numbers, 30-40% faster on a CPU (bench.py).
    eval_batch = max(config.batch_size, EVAL_BATCH_SIZE)
    val_data = make_dataset(x_val, y_val, eval_batch)
    test_data = make_dataset(x_test, y_test, eval_batch)
    steps = len(x_train) // config.batch_size
    if steps == 0:
        raise UserError(f"{len(x_train)} training images make no batch of {config.batch_size}")
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = build_compiled(config, steps)
        if state["epoch"]:
            restore_checkpoint(model, run / "checkpoint.keras")
    run.mkdir(parents=True, exist_ok=True)
    if chief and not state["epoch"]:
        config.save(run / "config.json", runtime_info(data.source, precision, strategy, len(x_train)))
    print(f"run {run}: {len(x_train)} train / {len(x_val)} val / {len(x_test)} test images, "
          f"{precision}, {model.count_params():,} parameters, epochs {state['epoch'] + 1}..{config.epochs}")
    callbacks = make_callbacks(config, run, test_data, state, chief)
    model.fit(train_data, validation_data=val_data, epochs=config.epochs, initial_epoch=state["epoch"],
              callbacks=callbacks, shuffle=False, verbose=getattr(args, "verbose", 1))
    return run


def restore_checkpoint(model, path: Path) -> None:
    """Weights and optimizer state (step count, moments, learning rate) from checkpoint.keras."""
    model.optimizer.build(model.trainable_variables)
    model.load_weights(path)


def main() -> None:
    train(parse_args())


if __name__ == "__main__":
    main_with_errors(main)
