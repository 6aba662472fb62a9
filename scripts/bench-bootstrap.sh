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
for ((i = 1; i <= runs; i++)); do
  (
    trap sb_cleanup EXIT
    sb_create "$tmp/run$i"
    sb_fake_runner FAKE_JOB_DELAY=0 FAKE_JOB_TENTHS=0
    sb_imds_start
    # shellcheck disable=SC2119 # default options, no overrides
    sb_render "$(sb_options)"
    sb_boot
    sb_wait_poweroff 20 >&2
    [[ $(sb_reason) == job-done ]] || { echo "run $i: unexpected power-off reason $(sb_reason)" >&2; exit 1; }
    start=${SB_BOOT_START/./} exec_at=$(<"$SB_OUT/runner-exec-time")
    exec_at=${exec_at/./}
    echo $(((exec_at - start) / 1000)) >"$tmp/ms$i"
  )
  times+=("$(<"$tmp/ms$i")")
done
mapfile -t sorted < <(printf '%s\n' "${times[@]}" | sort -n)
median=${sorted[$((runs / 2))]}
echo "runs (ms): ${times[*]}"
echo "bootstrap start -> runner exec: median ${median} ms (min ${sorted[0]}, max ${sorted[$((runs - 1))]}, n=${runs}, sandbox + fake IMDS; target < 1000 ms)"
