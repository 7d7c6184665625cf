#!/usr/bin/env bash
# CI for the asv suite: every benchmark imports and is well formed (asv check),
# and a --quick run of a subset against the installed package finishes
# without a failed benchmark. Needs asv (the `bench` extra).
#
#   bash scripts/ci_asv.sh                 # the default subset
#   bash scripts/ci_asv.sh 'TrainStep'     # another regular expression
set -euo pipefail
cd "$(dirname "$0")/../asv_benchmarks"

# One of each kind: a kernel, the train steps, fit, fit per epoch on 1 and 2 threads
# (Numba, 784-128-10) and with the parallel epoch, fit per step (Numba, config b),
# peak memory, a timeraw_
subset="${1:-Linear.time_linear_forward|TrainStep.time_step|FitEpoch.time_fit_epoch|FitEpochThreads.time_fit_epoch\('numba', '784-128-10', [12]\)|FitEpochSerialLoop.time_fit_epoch\('784-128-10'\)|FitSteps.track_fit_ms_per_step\('numba', 'b'\)|StepMemory|timeraw_import_fastnn$}"

asv machine --yes > /dev/null
asv check --python=same

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
asv run --python=same --quick --dry-run --show-stderr --bench "$subset" 2>&1 | tee "$log" \
    || status=$?
# asv 0.6 exits 2 when a benchmark fails; older versions exit 0, so read the log too
# (a benchmark that raises NotImplementedError in setup is "skipped", not failed).
if [ "$status" -ne 0 ] || grep -qE '(^|[[:space:]])failed([[:space:]]|$)|benchmark failed' "$log"; then
    echo "ci_asv: a benchmark failed (asv exit status $status)" >&2
    exit 1
fi
if ! grep -q 'Benchmarking' "$log"; then
    echo "ci_asv: no benchmark ran" >&2
    exit 1
fi
echo "ci_asv: ok"
