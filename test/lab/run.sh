#!/bin/bash
# The lab's Actions runner, for the instance simulator. Like the real listener it takes its JIT
# config from ACTIONS_RUNNER_INPUT_JITCONFIG and removes it from its environment at once; it
# never decodes it, never writes it down and never puts it in argv: it sends it (through curl's
# stdin) to the GitHub stand-in's /_lab endpoints, which decode it. Then:
#   connect -> take one job (long-poll) -> job-started hook -> "run" the job -> job-done ->
#   disconnect -> exit 0.
# lab-runner.env next to it says how to behave (the bootstrap gives the runner a clean env):
#   LAB_GITHUB_URL  the stand-in        LAB_OUT      where to record what happened
#   LAB_MODE        normal | crash (a broken image: exit 1 at once) | no-connect (never reaches GitHub)
#   LAB_JOB_MS      how long the job runs (ms), or "hang"
#   LAB_MARKER      the spot interruption marker the job watches
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/lab-runner.env"
out=$LAB_OUT
jit=${ACTIONS_RUNNER_INPUT_JITCONFIG:-}
unset ACTIONS_RUNNER_INPUT_JITCONFIG
stamp() { printf '%s %s\n' "$EPOCHREALTIME" "$1" >>"$out/runner-events"; }
stamp exec
if [[ -z $jit ]]; then
  echo "lab runner: no JIT config in ACTIONS_RUNNER_INPUT_JITCONFIG" >&2
  exit 3
fi
case $LAB_MODE in
  crash)
    echo "lab runner: broken image: the runner fails to start" >&2
    exit 1
    ;;
  no-connect)
    echo "lab runner: cannot reach GitHub; retrying forever"
    while :; do sleep 1; done
    ;;
esac

# lab <path>: POST the JIT config to the stand-in; sets HTTP and BODY.
lab() {
  local resp
  resp=$(printf '%s' "$jit" | curl -sS --max-time "${2:-10}" -A spot-runner-lab-runner --data-binary @- \
    -w '\n%{http_code}' "$LAB_GITHUB_URL$1") || { HTTP=000; BODY=''; return 1; }
  HTTP=${resp##*$'\n'}
  BODY=${resp%$'\n'*}
  [[ $HTTP == 2* ]]
}

lab /_lab/connect || { echo "lab runner: connect failed: HTTP $HTTP $BODY" >&2; exit 2; }
printf '%s\n' "$BODY" >"$out/connect.json"
stamp connected
# What Runner.Listener prints once its session exists (Runner.cs, RunAsync): the bootstrap
# watches for the second line to tag phase listening.
echo "Current runner version: '${LAB_RUNNER_VERSION:-2.330.0}'"
printf '%(%Y-%m-%d %H:%M:%S)TZ: Listening for Jobs\n' -1
while :; do
  if lab "/_lab/take-job?wait=${LAB_TAKE_WAIT_MS:-5000}" $((${LAB_TAKE_WAIT_MS:-5000} / 1000 + 10)); then
    [[ $HTTP == 200 ]] && break
    continue
  fi
  # 404: the runner was removed (stop or reap deleted it); a real runner exits then.
  echo "lab runner: take-job failed: HTTP $HTTP $BODY" >&2
  [[ $HTTP == 000 ]] && { sleep 1; continue; }
  exit 2
done
printf '%s\n' "$BODY" >"$out/job.json"
stamp job-taken
echo "lab runner: running job $BODY"
# The worker runs the job-started hook before the first step; a failing hook fails the job.
bash "$ACTIONS_RUNNER_HOOK_JOB_STARTED" || { echo "lab runner: job-started hook failed" >&2; exit 4; }
stamp job-started
start=${EPOCHREALTIME/./}
while :; do
  if [[ -n ${LAB_MARKER:-} && -e $LAB_MARKER && ! -e $out/job-saw-interrupted ]]; then
    cp "$LAB_MARKER" "$out/job-saw-interrupted"
    stamp job-saw-interrupted
  fi
  if [[ $LAB_JOB_MS != hang ]] && (((${EPOCHREALTIME/./} - start) / 1000 >= LAB_JOB_MS)); then break; fi
  sleep 0.1
done
lab /_lab/job-done || echo "lab runner: job-done failed: HTTP $HTTP" >&2
# Like the worker and listener: the job-completed hook (always()), then the result line.
if [[ -n ${ACTIONS_RUNNER_HOOK_JOB_COMPLETED:-} ]]; then bash "$ACTIONS_RUNNER_HOOK_JOB_COMPLETED"; fi
printf '%(%Y-%m-%d %H:%M:%S)TZ: Job lab completed with result: Succeeded\n' -1
stamp job-done
lab /_lab/disconnect || echo "lab runner: disconnect failed: HTTP $HTTP" >&2
stamp exit
echo "lab runner: job done, exiting"
exit 0
