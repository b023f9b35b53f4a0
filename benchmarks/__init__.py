"""The speed benchmark behind tools/bench.py: the whole epochs in their own processes
(epochs.py, with the plain Keras baseline plain_keras.py), the figures timed in-process
(workloads.py, timing.py), the whole run and what it adds up to (suite.py), the printed table
(table.py). tools/bench.py's docstring says what each row measures and how.

Nothing is imported here: `python -m benchmarks.plain_keras`, the baseline, loads only what a
course script would."""
