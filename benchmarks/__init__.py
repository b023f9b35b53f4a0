"""The speed benchmark behind tools/bench.py: timing (timing.py), what is timed (workloads.py),
the whole run and its derived figures (suite.py), the printed table (table.py). Its docstring,
tools/bench.py's, says what each row measures and how FLOPs and MFU are counted."""

from benchmarks.suite import annotate, precisions, run_benchmark, targets
from benchmarks.table import fmt, table
from benchmarks.timing import QUICK, Row, Settings, guarded, stats, timed
from benchmarks.workloads import layer_flops, project, train_batches

__all__ = ["QUICK", "Row", "Settings", "annotate", "fmt", "guarded", "layer_flops", "precisions",
           "project", "run_benchmark", "stats", "table", "targets", "timed", "train_batches"]
