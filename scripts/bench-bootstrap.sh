#!/bin/bash
# Benchmark: the bootstrap's own time, from script start until the runner is exec'd, in the
# sandbox with the fake IMDS (no network, shims for aws etc.). Median of N runs (default 7).
# Usage: scripts/bench-bootstrap.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# shellcheck source=user-data/test/sandbox.bash
. user-data/test/sandbox.bash
sb_build_renderer "$tmp/renderer"

times=()
jitters=()
for ((i = 1; i <= runs; i++)); do
  (
    # set -e would stop sb_cleanup at its first kill of nothing, before it kills the fake IMDS.
    trap 'sb_cleanup || true' EXIT
    sb_create "$tmp/run$i"
    sb_fake_runner FAKE_JOB_DELAY=0 FAKE_JOB_TENTHS=0
    # The fake IMDS must not hold this script's stdout open (the caller reads it to the end).
    sb_imds_start >/dev/null
    sb_put_param "/spot-runner/jit/$SB_LABEL/$SB_IID"
    # shellcheck disable=SC2119 # default options, no overrides
    sb_render "$(sb_options)"
    sb_boot
    sb_wait_poweroff 20 >&2
    [[ $(sb_reason) == job-done ]] || { echo "run $i: unexpected power-off reason $(sb_reason)" >&2; exit 1; }
    start=${SB_BOOT_START/./} exec_at=$(<"$SB_OUT/runner-exec-time")
    exec_at=${exec_at/./}
    # The deliberate 0-2 s jitter before the first SSM read (a hundred machines do not read at
    # once) is the bootstrap's own choice, reported apart: the target is for the rest.
    jitter=$(sed -n 's/.*waiting \([0-9]*\) ms (jitter).*/\1/p' "$SB/stdout" "$SB/console" 2>/dev/null | head -n 1)
    echo $(((exec_at - start) / 1000 - ${jitter:-0})) "${jitter:-?}" >"$tmp/ms$i"
  )
  read -r ms jit <"$tmp/ms$i"
  times+=("$ms")
  jitters+=("$jit")
done
mapfile -t sorted < <(printf '%s\n' "${times[@]}" | sort -n)
median=${sorted[$((runs / 2))]}
echo "runs (ms, jitter excluded): ${times[*]}; jitter (ms): ${jitters[*]}"
echo "bootstrap start -> runner exec: median ${median} ms without the SSM jitter (min ${sorted[0]}, max ${sorted[$((runs - 1))]}, n=${runs}, sandbox + fake IMDS; target < 1000 ms)"
