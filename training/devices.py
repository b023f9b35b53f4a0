"""Precision and devices: which Keras dtype policy a run trains under, which tf.distribute
strategy spreads it over devices or workers, and which worker writes the run folder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import keras

from models.config import ConfigError

# Config.precision -> Keras' global dtype policy.
PRECISION_POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def has_gpu() -> bool:
    """Whether the backend sees a GPU (fp16 is the fast precision there)."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if keras.backend.backend() == "jax":
        import jax

        return jax.default_backend() == "gpu"
    return False


def cpu_has_bf16() -> bool:
    """Whether the CPU computes bfloat16 natively; elsewhere bf16 is emulated, slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str) -> str:
    """"auto" becomes the fastest precision this machine has: fp16 on GPUs, bf16 on CPUs with
    AVX512-BF16/AMX, else fp32. Any other value is kept."""
    if precision != "auto":
        return precision
    if has_gpu():
        return "fp16"
    return "bf16" if cpu_has_bf16() else "fp32"


def precision_warning(precision: str) -> str | None:
    """A warning line where the precision a run trains under is emulated on this machine: fp16
    without a GPU, bf16 without a GPU or a CPU that computes it natively. Such a run still trains
    (to try the precision's code path on a laptop, say) but several times slower than fp32, so
    the run says so when it starts instead of refusing. None where the precision is native."""
    if precision not in ("fp16", "bf16") or has_gpu():
        return None
    if precision == "bf16" and cpu_has_bf16():
        return None
    hardware = ("a CPU (no GPU found)" if precision == "fp16"
                else "a CPU without AVX512-BF16 or AMX (no GPU found)")
    return (f"warning: {precision} is emulated on {hardware}: it trains several times slower "
            f"than fp32; --precision auto picks the fastest this machine has")


def make_strategy(name: str, *, cpu_devices: int = 1):
    """A tf.distribute strategy, or None for Keras' default single-device training.

    "auto" is multi-worker where TF_CONFIG describes a cluster, mirrored over several local GPUs,
    else None. cpu_devices > 1 splits the CPU into logical devices, so that a mirrored strategy
    can be tried without GPUs; it must happen before TensorFlow initialises its devices.
    """
    if keras.backend.backend() != "tensorflow":
        if name != "auto":
            raise ConfigError(f"strategy {name!r} needs the TensorFlow backend, "
                              f"not {keras.backend.backend()}")
        return None
    import tensorflow as tf

    if cpu_devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_devices)
    if multi_worker(name):
        tf_config()  # a malformed TF_CONFIG is one line here, not a traceback inside TensorFlow
        return _reduce_each(tf.distribute.MultiWorkerMirroredStrategy())
    if name == "auto":
        name = "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "none"
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
        return tf.nest.map_structure(
            lambda v: reduce_one(op, v, axis if rank(v) else None), value)

    strategy.reduce = reduce_each
    return strategy


def multi_worker(strategy: str) -> bool:
    """Whether make_strategy(strategy) trains over several workers: "multiworker", or "auto"
    where TF_CONFIG describes a cluster (TensorFlow backend only)."""
    if keras.backend.backend() != "tensorflow":
        return False
    return strategy == "multiworker" or (strategy == "auto" and "TF_CONFIG" in os.environ)


def tf_config() -> dict[str, Any] | None:
    """TF_CONFIG, the cluster and this process's task in it, checked; None where it is unset.

    TensorFlow would end in a traceback on a value it cannot parse; this names what is wrong.
    """
    text = os.environ.get("TF_CONFIG")
    if text is None:
        return None
    unset = "describe the cluster in it, or unset it to train on one machine"
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"TF_CONFIG is not JSON ({error.msg} at character {error.pos} of "
                          f"{text[:60]!r}); {unset}") from None
    problem = _tf_config_problem(parsed)
    if problem:
        raise ConfigError(f"TF_CONFIG {problem}; {unset}")
    return parsed


def _tf_config_problem(parsed: Any) -> str | None:
    if not isinstance(parsed, dict):
        return f"holds a JSON {type(parsed).__name__}, not an object with a cluster and a task"
    cluster, task = parsed.get("cluster", {}), parsed.get("task", {})
    if not isinstance(cluster, dict) or not all(
            isinstance(hosts, list) for hosts in cluster.values()):
        return 'has a "cluster" that is not an object of host lists'
    if not isinstance(task, dict):
        return 'has a "task" that is not an object with a "type" and an "index"'
    kind, index = task.get("type"), task.get("index", 0)
    if kind is None:
        return None
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        return f'has a task index {json.dumps(index)}, not a number from 0'
    if kind not in cluster or index >= len(cluster[kind]):
        return (f"names task {kind} {index}, which its cluster lacks "
                f"({', '.join(f'{k}: {len(v)}' for k, v in cluster.items()) or 'empty'})")
    return None


def is_chief(cluster_config: dict[str, Any] | None) -> bool:
    """Whether the task a TF_CONFIG (as tf_config() returns it) names is the cluster's chief,
    the one worker that writes the run folder; the others train into a scratch folder.

    Without a chief in the cluster, worker 0 is the chief (TensorFlow's own convention)."""
    task = (cluster_config or {}).get("task", {})
    kind = task.get("type")
    if not kind or kind == "chief":
        return True
    return (kind == "worker" and task.get("index", 0) == 0
            and "chief" not in cluster_config.get("cluster", {}))


def writes_run_folder(strategy: str) -> bool:
    """Whether this process writes the run folder under the strategy: always on one machine,
    only as the chief of a multi-worker cluster."""
    return not multi_worker(strategy) or is_chief(tf_config())
