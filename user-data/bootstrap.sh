#!/bin/bash
# spot-runner bootstrap: the instance's user-data, rendered by src/userdata/render.ts.
# Runs once, as root, from cloud-init. It runs one job and then always powers off.
# The JIT config never reaches argv, a log, a file, or a job's environment.
# Full-line comments are stripped when rendered (16 KB limit), so keep them on their own lines.
set -Eeuo pipefail
umask 077
export LC_ALL=C TZ=UTC AWS_PAGER=''

#@@VALUES-BEGIN@@
SR_REGION='us-east-1'
SR_PARAM_PREFIX='/spot-runner/jit/unrendered'
SR_LABEL='unrendered'
SR_MAX_LIFETIME_SECONDS=3600
SR_MAX_LIFETIME_MINUTES_CEIL=60
SR_IDLE_TIMEOUT_SECONDS=900
SR_PRE_RUNNER_TIMEOUT_SECONDS=600
SR_PARAM_WAIT_SECONDS=300
SR_HOOK_TIMEOUT_SECONDS=60
SR_JOB_IMDS_ACCESS=0
SR_PRE_RUNNER_B64=''
#@@VALUES-END@@

# Test-only overrides (user-data/test/README.md); the defaults are the real machine.
IMDS=${SPOT_RUNNER_IMDS_ENDPOINT:-http://169.254.169.254}
SR_ROOT=${SPOT_RUNNER_ROOT:-}
RUNNER_DIR=${SPOT_RUNNER_RUNNER_DIR:-/opt/actions-runner}
RUNNER_USER=${SPOT_RUNNER_USER:-runner}
SPOT_POLL=${SPOT_RUNNER_SPOT_POLL_SECONDS:-5}
CONSOLE=${SPOT_RUNNER_CONSOLE:-/dev/console}
ETC=$SR_ROOT/etc/spot-runner
# RUN is world-readable (job-visible markers); PRIV is root-only; JOBDIR is the runner's.
RUN=$SR_ROOT/run/spot-runner
PRIV=$RUN/private
JOBDIR=$RUN/job
IID=''
POWERING_OFF=''
HOOKS_PID=''
ERR_LINE=''
START_MS=$((${EPOCHREALTIME/./} / 1000))

log() {
  local ts
  printf -v ts '%(%Y-%m-%dT%H:%M:%SZ)T' -1
  printf '%s spot-runner[%s]: %s\n' "$ts" "$SR_LABEL" "$*"
}

now_ms() { NOW=$((${EPOCHREALTIME/./} / 1000)); }

# Tag values: EC2-safe charset, at most 200 chars.
sanitize() {
  local s=${1//[^A-Za-z0-9._:\/@+-]/-}
  printf '%s' "${s:0:200}"
}

tag_now() {
  local iid=$IID
  [[ -n $iid ]] || iid=$(cat "$PRIV/instance-id" 2>/dev/null) || return 0
  timeout 20 aws ec2 create-tags --region "$SR_REGION" --resources "$iid" \
    --tags "Key=spot-runner:phase,Value=$1" >/dev/null 2>&1 || log "warning: could not tag phase $1"
}

# Tags are written in the background so boot never waits on EC2. A tagger reads the
# latest phase under a lock, so the last tag written is always the newest phase.
set_phase() {
  printf '%s\n' "$1" >"$PRIV/phase" || return 0
  (
    trap - ERR
    exec 9>>"$PRIV/tag.lock"
    flock -w 30 9 || exit 0
    tag_now "$(cat "$PRIV/phase")"
  ) &
}

# Console first, then the phase tag, then power off. Idempotent; never returns.
power_off() {
  local reason phase
  reason=$(sanitize "$1")
  [[ -z $POWERING_OFF ]] || return 0
  POWERING_OFF=1
  trap - ERR EXIT TERM INT HUP
  set +e
  log "power-off: $reason"
  printf 'spot-runner: power-off: %s\n' "$reason" >>"$CONSOLE" 2>/dev/null
  printf '%s\n' "$reason" >"$RUN/poweroff-reason" 2>/dev/null && chmod 0644 "$RUN/poweroff-reason"
  if [[ -n $HOOKS_PID ]] && kill -0 "$HOOKS_PID" 2>/dev/null; then
    log "waiting for interruption hooks to finish"
    wait "$HOOKS_PID"
  fi
  if [[ $reason == job-done ]]; then phase=shutting-down; else phase=failed:$reason; fi
  # Keep the spot notice visible to stop after the final phase is written.
  [[ ! -e $RUN/interrupted ]] || phase=interrupted:$phase
  phase=$(sanitize "$phase")
  printf '%s\n' "$phase" >"$PRIV/phase" 2>/dev/null
  (
    exec 9>>"$PRIV/tag.lock"
    flock -w 20 9
    tag_now "$phase"
  )
  systemctl poweroff || shutdown -h now || poweroff -f
  sleep 120
  poweroff -f
  exit 1
}

on_exit() {
  local rc=$?
  power_off "bootstrap-exited:${ERR_LINE:+line-$ERR_LINE:}exit-$rc"
}

# ---- 1. Trap first, then the deadline (three independent lines). ----
trap 'ERR_LINE=$LINENO' ERR
trap on_exit EXIT
trap 'power_off signal-TERM' TERM
trap 'power_off signal-INT' INT
trap 'power_off signal-HUP' HUP
mkdir -p "$ETC/hooks" "$ETC/interruption.d" "$PRIV" "$JOBDIR"
chmod 0755 "$RUN" "$ETC" "$ETC/hooks"
chmod 0700 "$PRIV"
log "bootstrap started (max-lifetime ${SR_MAX_LIFETIME_SECONDS}s, idle-timeout ${SR_IDLE_TIMEOUT_SECONDS}s)"
DEADLINE_MS=$((START_MS + SR_MAX_LIFETIME_SECONDS * 1000))
# Line one: the OS shutdown scheduler.
shutdown -h "+$SR_MAX_LIFETIME_MINUTES_CEIL" "spot-runner: max-lifetime reached" >/dev/null 2>&1 ||
  log "warning: could not schedule shutdown +$SR_MAX_LIFETIME_MINUTES_CEIL"
# Line two: a systemd timer running a standalone copy of power_off (it works even if we hang).
{
  printf '#!/bin/bash\nset -u\n'
  declare -p SR_REGION SR_LABEL CONSOLE RUN PRIV
  printf 'IID= POWERING_OFF= HOOKS_PID=\n'
  declare -f log sanitize tag_now power_off
  # shellcheck disable=SC2016
  printf 'power_off "${1:-deadline-timer}"\n'
} >"$ETC/power-off.sh"
chmod 0700 "$ETC/power-off.sh"
systemd-run --quiet --unit="spot-runner-deadline-$$" --on-active="${SR_MAX_LIFETIME_SECONDS}s" \
  --timer-property=AccuracySec=1s /bin/bash "$ETC/power-off.sh" max-lifetime >/dev/null 2>&1 ||
  log "warning: could not start the systemd deadline timer"
# Line three: the supervise loop below checks DEADLINE_MS.

# ---- 2. Who am I (IMDSv2 only). The token stays in a root-only file, never in argv. ----
imds_token() {
  local tok
  tok=$(curl -sf --max-time 3 --retry 5 --retry-delay 1 --retry-connrefused -X PUT \
    -H 'X-aws-ec2-metadata-token-ttl-seconds: 21600' "$IMDS/latest/api/token") || return 1
  printf 'X-aws-ec2-metadata-token: %s\n' "$tok" >"$PRIV/imds-header"
}
imds_get() { curl -sf --max-time 3 -H @"$PRIV/imds-header" "$IMDS/latest/$1"; }

imds_token || power_off imds-token-failed
IID=$(imds_get meta-data/instance-id) || power_off imds-instance-id-failed
[[ $IID =~ ^i-[0-9a-f]{8,17}$ ]] || power_off imds-bad-instance-id
printf '%s\n' "$IID" >"$PRIV/instance-id"
set_phase booting
log "instance $IID, label $SR_LABEL"

RUNNER_UID=$(id -u "$RUNNER_USER" 2>/dev/null) || power_off runner-user-missing
RUNNER_GID=$(id -g "$RUNNER_USER")
RUNNER_HOME=$(getent passwd "$RUNNER_USER" | cut -d: -f6)
[[ -x $RUNNER_DIR/run.sh ]] || power_off runner-missing
chown "$RUNNER_UID:$RUNNER_GID" "$JOBDIR"
chmod 0755 "$JOBDIR"
rm -f "$JOBDIR/started" "$RUN/interrupted"

# ---- 3. Job steps run as the runner user: keep them away from IMDS unless allowed. ----
if [[ $SR_JOB_IMDS_ACCESS == 1 ]]; then
  log "job steps may reach IMDS (job-imds-access)"
else
  iptables -w -I OUTPUT -m owner --uid-owner "$RUNNER_UID" -d 169.254.169.254/32 -j REJECT ||
    power_off imds-firewall-failed
  ip6tables -w -I OUTPUT -m owner --uid-owner "$RUNNER_UID" -d fd00:ec2::254/128 -j REJECT 2>/dev/null ||
    log "note: no IPv6 IMDS rule (IPv6 off?)"
fi

# ---- Spot watch, run from the supervise loop. ----
on_spot_notice() {
  cp "$PRIV/spot-action" "$RUN/interrupted"
  chmod 0644 "$RUN/interrupted"
  log "spot interruption notice: $(tr -cd '[:print:]' <"$PRIV/spot-action" | head -c 300)"
  set_phase interrupted
  (
    trap - ERR
    set +e
    for h in "$ETC"/interruption.d/*; do
      [[ -f $h && -x $h ]] || continue
      SPOT_RUNNER_INTERRUPTION_NOTICE=$RUN/interrupted timeout --kill-after=5 "$SR_HOOK_TIMEOUT_SECONDS" "$h" </dev/null
      log "interruption hook ${h##*/} exited $?"
    done
  ) &
  HOOKS_PID=$!
}

spot_check() {
  local code
  code=$(curl -s -o "$PRIV/spot-action" -w '%{http_code}' --max-time 2 -H @"$PRIV/imds-header" \
    "$IMDS/latest/meta-data/spot/instance-action") || return 0
  case $code in
    200) SPOT_NOTICED=1; on_spot_notice ;;
    401) imds_token || true ;;
  esac
}

# Seconds (maybe fractional) to milliseconds, without forking.
to_ms() {
  [[ $1 =~ ^([0-9]+)(\.([0-9]+))?$ ]] || { printf '5000'; return; }
  local f=${BASH_REMATCH[3]}000
  printf '%d' $((10#${BASH_REMATCH[1]} * 1000 + 10#${f:0:3}))
}
SPOT_POLL_MS=$(to_ms "$SPOT_POLL")
((SPOT_POLL_MS >= 50 && SPOT_POLL_MS <= 5000)) || SPOT_POLL_MS=5000
if ((SPOT_POLL_MS < 1000)); then TICK=$SPOT_POLL; else TICK=1; fi
SPOT_NOTICED=''
NEXT_SPOT=0
JOB_STARTED=''

# supervise <pid> <stage>: wait for pid, enforcing the deadline, the idle timeout (runner
# stage) and the spot watch. Sets CHILD_RC.
supervise() {
  local pid=$1 stage=$2
  while kill -0 "$pid" 2>/dev/null; do
    now_ms
    ((NOW < DEADLINE_MS)) || power_off max-lifetime
    if [[ $stage == runner && -z $JOB_STARTED ]]; then
      if [[ -e $JOBDIR/started ]]; then
        JOB_STARTED=1
        log "job started"
        set_phase job-started
      elif ((NOW >= IDLE_DEADLINE_MS)); then
        power_off idle-timeout
      fi
    fi
    if [[ -z $SPOT_NOTICED ]] && ((NOW >= NEXT_SPOT)); then
      spot_check
      NEXT_SPOT=$((NOW + SPOT_POLL_MS))
    fi
    sleep "$TICK"
  done
  CHILD_RC=0
  wait "$pid" || CHILD_RC=$?
}

# ---- 4. The user's pre-runner script: root, bounded, before the runner. ----
if [[ -n $SR_PRE_RUNNER_B64 ]]; then
  base64 -d <<<"$SR_PRE_RUNNER_B64" | gunzip >"$PRIV/pre-runner.sh" || power_off pre-runner-script-undecodable
  chmod 0700 "$PRIV/pre-runner.sh"
  log "pre-runner-script: running (limit ${SR_PRE_RUNNER_TIMEOUT_SECONDS}s)"
  timeout --kill-after=10 "$SR_PRE_RUNNER_TIMEOUT_SECONDS" /bin/bash "$PRIV/pre-runner.sh" </dev/null &
  supervise $! pre-runner
  case $CHILD_RC in
    0) log "pre-runner-script: done" ;;
    124 | 137) power_off pre-runner-script-timeout ;;
    *) power_off "pre-runner-script-failed:exit-$CHILD_RC" ;;
  esac
fi

# ---- 5. The JIT config: own parameter only, bounded retries, then delete it. ----
# It lives only in this shell's memory (root) and the runner's environment.
PARAM="$SR_PARAM_PREFIX/$IID"
JIT=''
now_ms
PARAM_END=$((NOW + SR_PARAM_WAIT_SECONDS * 1000))
DELAY=0.25
while :; do
  if JIT=$(aws ssm get-parameter --region "$SR_REGION" --name "$PARAM" --with-decryption \
    --query Parameter.Value --output text 2>"$PRIV/ssm-err") && [[ -n $JIT ]]; then
    break
  fi
  now_ms
  if ((NOW >= PARAM_END || NOW >= DEADLINE_MS)); then
    code=$(grep -o '([A-Za-z]*)' "$PRIV/ssm-err" | head -n 1 | tr -d '()') || true
    power_off "ssm-read-failed:${code:-unknown}"
  fi
  sleep "$DELAY"
  case $DELAY in 0.25) DELAY=0.5 ;; 0.5) DELAY=1 ;; 1) DELAY=2 ;; *) DELAY=4 ;; esac
done
# A real JIT config is base64; anything else (e.g. "None") must not reach the runner.
[[ $JIT =~ ^[A-Za-z0-9+/=_-]+$ ]] || power_off jit-config-malformed
for _ in 1 2 3; do
  if aws ssm delete-parameter --region "$SR_REGION" --name "$PARAM" >/dev/null 2>"$PRIV/ssm-err"; then
    break
  fi
  log "warning: could not delete $PARAM (stop/reap will)"
  sleep 1
done
log "JIT config read from $PARAM"

# ---- 6. The job-started hook: runs as the runner user; only touches a marker. ----
{
  printf '#!/bin/bash\n'
  printf ': >%q 2>/dev/null || true\nexit 0\n' "$JOBDIR/started"
} >"$ETC/hooks/job-started.sh"
chmod 0755 "$ETC/hooks/job-started.sh"

# ---- 7. Start the runner as the unprivileged user, with a clean environment. ----
# The config is exported only inside this subshell. The runner reads
# ACTIONS_RUNNER_INPUT_JITCONFIG and removes it before it starts any job (docs/security.md).
(
  trap - ERR EXIT TERM INT HUP
  keep_path=$PATH
  for v in $(compgen -e); do unset "$v" 2>/dev/null || true; done
  for f in $(compgen -A function); do unset -f "$f"; done
  export PATH=$keep_path HOME=$RUNNER_HOME USER=$RUNNER_USER LOGNAME=$RUNNER_USER LANG=C.UTF-8
  export ACTIONS_RUNNER_HOOK_JOB_STARTED=$ETC/hooks/job-started.sh
  export ACTIONS_RUNNER_INPUT_JITCONFIG=$JIT
  cd "$RUNNER_DIR"
  umask 022
  exec setpriv --reuid="$RUNNER_UID" --regid="$RUNNER_GID" --init-groups -- ./run.sh
) </dev/null &
RUNNER_PID=$!
JIT=''
now_ms
log "runner started (pid $RUNNER_PID) $((NOW - START_MS)) ms after bootstrap start"
set_phase runner-started
IDLE_DEADLINE_MS=$((NOW + SR_IDLE_TIMEOUT_SECONDS * 1000))

# ---- 8. One job, then power off, whatever happened. ----
supervise "$RUNNER_PID" runner
if [[ -n $JOB_STARTED || -e $JOBDIR/started ]]; then
  if ((CHILD_RC == 0)); then power_off job-done; fi
  power_off "runner-exited:exit-$CHILD_RC"
fi
power_off "runner-exited-without-job:exit-$CHILD_RC"
