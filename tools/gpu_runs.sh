#!/usr/bin/env bash
# Many trainings at once on one lent GPU, and their run folders back, within one device call.
#
#   bash tools/gpu_runs.sh PLAN DATA OUT [SECONDS]
#
# PLAN     a text file, one run a line: its name, then its train.py flags, e.g.
#              budget-20-seed-1 --preset budget --epochs 20 --seed 1
# DATA     the CIFAR-10 folder or tar.gz on that machine (it must travel with the call: carry it)
# OUT      where the runs come back: runs.tar.gz, cut into parts of 15 MiB (the device call
#          returns files of at most 16 MiB); put them together with
#              cat runs.tar.gz.part-* | tar -xz -C logs/
# SECONDS  the deadline of the trainings (default 480, inside the call's 10 minutes); at it each
#          run gets SIGTERM, stops after its epoch's commit and is packed as it is. The same call
#          again, while the machine is warm, resumes every unfinished run (its folder stays in
#          $GPU_RUNS there, default .gpu/runs) and skips the finished ones.
#
# The GPU machine has JAX but neither TensorFlow nor Keras: wheels in $WHEELS (default .whl: Keras
# and what the image lacks of its needs) are installed into /tmp/site first, and the runs train on the JAX
# backend (train.py writes no TensorBoard event files without TensorFlow, and says so). Every run
# is scored by evaluate.py once it has finished. $PYTHON is the interpreter (default python3, the
# image's). Weights stay behind, except the best weights of
# the runs named in $KEEP (at most two fit the 64 MiB a call returns).
#
# The wheels, fetched here for the image's Python 3.12 (Keras needs namex and optree beside what
# the image has):
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#         --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
#         -d .whl keras==3.15.1 namex optree
# A device call carries the working tree and the carried paths, 64 MiB in all: the published
# weights (25 MB each) and the CIFAR-10 copy (184 MB) do not fit one call. Move the weights out
# of the checkout for the call, and bring the data in pieces of under 60 MiB in successive calls
# to a warm machine (each piece an ignored folder named in carry; what an earlier call left
# stays), joined there into DATA before the trainings start.
#
# Checked on the CPU by tests/test_gpu_runs.py, with TensorFlow's import blocked.
set -euo pipefail
plan=$1 data=$2 out=$3 seconds=${4:-480}
runs=${GPU_RUNS:-.gpu/runs} wheels=${WHEELS:-.whl} python=${PYTHON:-python3}
mkdir -p "$runs" "$out"
if compgen -G "$wheels/*.whl" > /dev/null; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site "$wheels"/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export KERAS_BACKEND=${KERAS_BACKEND:-jax}
# Several processes share the one GPU: none may take most of its memory up front, as JAX does.
export XLA_PYTHON_CLIENT_PREALLOCATE=false

train_and_score() {  # NAME FLAGS...: train (or resume) one run, then score it once finished
    local name=$1
    shift
    local folder=$runs/$name
    if [[ -f $folder/checkpoint.keras ]]; then
        set -- --resume
    else
        set -- --data-dir "$data" "$@"
    fi
    timeout -s TERM "$seconds" "$python" train.py --run "$name" --out "$runs" --verbose 0 "$@" \
        || true
    if [[ ! -f $folder/checkpoint.keras ]] || grep -q "^stopped" "$folder.log"; then
        return
    fi
    "$python" evaluate.py --run "$folder" --which best || true
}

while read -r name flags; do
    [[ -z $name || $name == \#* ]] && continue
    # shellcheck disable=SC2086  # the plan's flags are words
    train_and_score "$name" $flags > "$runs/$name.log" 2>&1 &
done < "$plan"
wait
exclude=(--exclude=checkpoint.keras --exclude=last.weights.h5 --exclude=".[!.]*") names=()
for folder in "$runs"/*/; do
    name=$(basename "$folder")
    names+=("$name")
    [[ " ${KEEP:-} " == *" $name "* ]] || exclude+=(--exclude="$name/best.weights.h5")
done
tar -cz -C "$runs" "${exclude[@]}" "${names[@]}" | split -b 15M -d - "$out/runs.tar.gz.part-"
for log in "$runs"/*.log; do
    echo "== $(basename "$log" .log): $(grep -E '^(epoch|test loss|stopped|error)' "$log" \
        | tail -1)"
done
