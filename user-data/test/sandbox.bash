# shellcheck shell=bash
# The sandbox that runs the REAL rendered bootstrap on this machine (contract: README.md).
# Used by bootstrap.bats and scripts/bench-bootstrap.sh; a lab simulator can reuse it and
# swap the aws shim or the fake run.sh.
SB_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# sb_build_renderer <dir>: the real renderer, built once (sets SB_RENDER_DIR).
sb_build_renderer() {
  SB_RENDER_DIR=$1
  node "$SB_HERE/build-renderer.mjs" "$SB_RENDER_DIR"
}

# sb_create <dir> [label]: lays out a sandbox and a fresh fake JIT config (SB_SECRET, not exported).
sb_create() {
  SB=$1
  SB_LABEL=${2:-spot-runner-test-1}
  SB_STATE=$SB/state SB_ROOT=$SB/root SB_RUNNER_DIR=$SB/runner SB_OUT=$SB/out
  mkdir -p "$SB_STATE/ssm" "$SB_STATE/fail" "$SB_STATE/slow" "$SB_ROOT" "$SB_RUNNER_DIR" "$SB_OUT" "$SB/tmp"
  chmod 0700 "$SB_STATE"
  SB_IID=i-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n' | cut -c1-17)
  # A JIT config is ~2-3 KB of base64; a random one cannot occur anywhere by accident.
  SB_SECRET=$(head -c 1800 /dev/urandom | base64 -w0)
  local sum
  sum=$(printf '%s' "$SB_SECRET" | sha256sum)
  cp -r "$SB_HERE/fake-runner/." "$SB_RUNNER_DIR/"
  : >"$SB_RUNNER_DIR/.sandbox-allow-root"
  sb_fake_runner FAKE_STATE="$SB_OUT" FAKE_EXPECT_JIT_SHA256="${sum%% *}" \
    FAKE_INTERRUPTED_MARKER="$SB_ROOT/run/spot-runner/interrupted" \
    FAKE_JOB=1 FAKE_JOB_DELAY=0.2 FAKE_JOB_TENTHS=3 FAKE_EXIT=0
  sb_put_param "/spot-runner/jit/$SB_LABEL/$SB_IID"
}

# sb_fake_runner KEY=VALUE...: sets fake run.sh behaviour (appends; later wins).
sb_fake_runner() {
  local kv
  for kv in "$@"; do printf '%s=%q\n' "${kv%%=*}" "${kv#*=}"; done >>"$SB_RUNNER_DIR/fake-runner.env"
}

# sb_put_param <name> [whole-seconds-until-visible]: store SB_SECRET as the SSM parameter (mode 600).
sb_put_param() {
  local f=$SB_STATE/ssm/${1//\//%}
  (umask 077 && printf '%s' "$SB_SECRET" >"$f")
  if [[ -n ${2:-} ]]; then printf '%s\n' $((${EPOCHREALTIME/./} / 1000 + $2 * 1000)) >"$f.after"; fi
}

# sb_imds_start: the fake IMDS on a free loopback port (sets SB_IMDS, SB_IMDS_PID).
sb_imds_start() {
  python3 "$SB_HERE/fake-imds.py" --instance-id "$SB_IID" --port-file "$SB_STATE/imds.port" \
    --spot-notice-file "$SB_STATE/spot-notice" --log "$SB_STATE/imds.log" --state "$SB_STATE" 2>>"$SB_STATE/imds.err" &
  SB_IMDS_PID=$!
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -s $SB_STATE/imds.port ]] && break
    sleep 0.05
  done
  [[ -s $SB_STATE/imds.port ]] || { echo "fake IMDS did not start" >&2; return 1; }
  SB_IMDS=http://127.0.0.1:$(<"$SB_STATE/imds.port")
}

# sb_spot_notice: IMDS starts answering spot/instance-action.
sb_spot_notice() {
  printf '{"action":"terminate","time":"%(%Y-%m-%dT%H:%M:%SZ)T"}' $((EPOCHSECONDS + 120)) >"$SB_STATE/spot-notice"
}

# sb_render <options-json>: real renderer -> $SB/user-data.sh. Needs SB_RENDER_DIR.
sb_render() {
  node "$SB_HERE/render-cli.mjs" "${SB_RENDER_DIR:?run sb_build_renderer first}" <<<"$1" >"$SB/user-data.sh"
}

# sb_options [jq-style overrides as KEY=JSON...]: default test options as JSON.
sb_options() {
  local o="\"region\":\"us-east-1\",\"parameterPrefix\":\"/spot-runner/jit/$SB_LABEL\",\"label\":\"$SB_LABEL\""
  o+=',"maxLifetimeMinutes":1,"idleTimeoutMinutes":0.5,"preRunnerScript":"","preRunnerTimeoutMinutes":0.5'
  o+=',"jobImdsAccess":false,"parameterWaitSeconds":5,"interruptionHookTimeoutSeconds":2'
  local kv
  for kv in "$@"; do o+=",\"${kv%%=*}\":${kv#*=}"; done
  printf '{%s}' "$o"
}

# sb_boot: start the bootstrap in its own session (setsid), like cloud-init would, as root.
sb_boot() {
  # shellcheck disable=SC2034 # read by scripts/bench-bootstrap.sh
  SB_BOOT_START=$EPOCHREALTIME
  PATH="$SB_HERE/shims:$PATH" \
    SPOT_RUNNER_TEST_STATE=$SB_STATE \
    SPOT_RUNNER_IMDS_ENDPOINT=$SB_IMDS \
    AWS_ENDPOINT_URL=$SB_IMDS AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
    SPOT_RUNNER_ROOT=$SB_ROOT \
    SPOT_RUNNER_RUNNER_DIR=$SB_RUNNER_DIR \
    SPOT_RUNNER_USER=$(id -un) \
    SPOT_RUNNER_SPOT_POLL_SECONDS=${SB_SPOT_POLL:-0.2} \
    SPOT_RUNNER_CONSOLE=$SB/console \
    TMPDIR=$SB/tmp \
    setsid bash "$SB/user-data.sh" >"$SB/stdout" 2>&1 </dev/null &
  SB_PID=$!
  # Power-off is SIGKILL by design; don't let this shell report it as a crashed job.
  disown "$SB_PID"
}

# sb_session_pids: live (non-zombie) processes left in the bootstrap's session (setsid).
# Zombies do not count: whoever adopted them (maybe a slow PID 1) reaps them later.
sb_session_pids() {
  local f stat rest state sid
  for f in /proc/[0-9]*/stat; do
    { read -r stat <"$f"; } 2>/dev/null || continue
    rest=${stat##*) }
    read -r state _ _ sid _ <<<"$rest"
    [[ $sid == "$SB_PID" && $state != Z ]] && printf '%s\n' "${f//[^0-9]/}"
  done
  return 0
}
sb_group_alive() { [[ -n $(sb_session_pids) ]]; }

# sb_wait_poweroff [timeout-seconds]: until a shim powered off and the bootstrap's group is gone.
sb_wait_poweroff() {
  local limit=$((${1:-20} * 20)) i
  for ((i = 0; i < limit; i++)); do
    if [[ -e $SB_STATE/poweroff ]] && ! sb_group_alive; then return 0; fi
    sleep 0.05
  done
  echo "no power-off within ${1:-20}s; bootstrap output:" >&2
  cat "$SB/stdout" >&2
  return 1
}

# sb_bootstrap_pid: the supervisor (the bootstrap hands itself to a systemd-run unit).
sb_bootstrap_pid() { cat "$SB_ROOT/run/spot-runner/private/bootstrap.pid"; }

# sb_reason: the reason the bootstrap gave for powering off.
sb_reason() { cat "$SB_ROOT/run/spot-runner/poweroff-reason"; }

# sb_cleanup: kill whatever is left (the bootstrap's whole group and the fake IMDS).
sb_cleanup() {
  if [[ -n ${SB_PID:-} ]]; then
    kill -KILL -- "-$SB_PID" 2>/dev/null
    # shellcheck disable=SC2046 # one pid per word
    kill -KILL $(sb_session_pids) 2>/dev/null
  fi
  [[ -n ${SB_IMDS_PID:-} ]] && kill "$SB_IMDS_PID" 2>/dev/null
  return 0
}
