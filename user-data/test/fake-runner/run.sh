#!/bin/bash
# Fake Actions runner for the sandbox: start -> (job-started hook) -> job step -> exit.
# Configured by fake-runner.env next to it (the bootstrap gives the runner a clean env).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/fake-runner.env"
out=$FAKE_STATE
printf '%s\n' "$EPOCHREALTIME" >"$out/runner-exec-time"
printf '%s\n' "$$" >"$out/runner.pid"
# Like Runner.Listener (CommandSettings.cs): read the config from the env, then remove it
# before any job runs. Only a hash of it is ever written.
jit=${ACTIONS_RUNNER_INPUT_JITCONFIG:-}
unset ACTIONS_RUNNER_INPUT_JITCONFIG
if [[ -z $jit ]]; then
  echo "fake runner: no JIT config in ACTIONS_RUNNER_INPUT_JITCONFIG" >&2
  exit 3
fi
sum=$(printf '%s' "$jit" | sha256sum)
jit=''
if [[ ${sum%% *} != "$FAKE_EXPECT_JIT_SHA256" ]]; then
  echo "fake runner: wrong JIT config" >&2
  exit 3
fi
: >"$out/jit-ok"
echo "fake runner: listening for jobs"
if [[ $FAKE_JOB != 1 ]]; then
  sleep 3600
  exit 0
fi
sleep "$FAKE_JOB_DELAY"
# The Worker runs the job-started hook; a failing hook fails the job.
bash "$ACTIONS_RUNNER_HOOK_JOB_STARTED" || exit 4
# The job step. Its environment is what a workflow step sees; it watches for the spot marker.
bash -c '
  out=$1 marker=$2 tenths=$3
  printf "%s\n" "$$" >"$out/job.pid"
  env >"$out/job-env"
  for ((i = 0; i < tenths; i++)); do
    [[ -e $marker && ! -e $out/job-saw-interrupted ]] && cp "$marker" "$out/job-saw-interrupted"
    sleep 0.1
  done
' job "$out" "$FAKE_INTERRUPTED_MARKER" "$FAKE_JOB_TENTHS"
echo "fake runner: job done"
exit "$FAKE_EXIT"
