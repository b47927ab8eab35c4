#!/usr/bin/env bash
# The suite as `make test` runs it (docs/testing.md): two pytest processes at once, on disjoint DDS domains.
#   real time: the tests marked `realtime` (SIL flights, the runtime's timeouts and latencies), one at a time, at
#              normal priority;
#   compute:   every other test, one at a time, at the lowest CPU priority (nice 19): it takes what the real-time
#              tests leave of the cores, so they run as if alone.
# Its output is shown after the real-time phase's. Exit status: 0 when both phases passed.
# Usage: tests/run_suite.sh PYTHON [pytest args for both phases...]
set -u
py=${1:?usage: tests/run_suite.sh PYTHON [pytest args...]}
shift
log=$(mktemp -t sim2real-compute-XXXXXX.log)
SIM2REAL_TEST_DOMAIN_SHARE=0/2 nice -n 19 "$py" -m pytest -q -m "not realtime" "$@" >"$log" 2>&1 &
compute_pid=$!
trap 'kill "$compute_pid" 2>/dev/null; rm -f "$log"' EXIT
trap 'exit 130' INT TERM
echo "compute phase: pid $compute_pid, output in $log (shown when the real-time phase is done)"
SIM2REAL_TEST_DOMAIN_SHARE=1/2 "$py" -m pytest -q -m realtime "$@"
realtime=$?
wait "$compute_pid"
compute=$?
echo "---------------------------------------- compute phase (nice 19, beside the real-time phase)"
cat "$log"
echo "run_suite: real-time phase exit $realtime, compute phase exit $compute"
[ "$realtime" -eq 0 ] && [ "$compute" -eq 0 ]
