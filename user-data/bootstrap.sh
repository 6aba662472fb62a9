#!/bin/bash
# spot-runner bootstrap: the instance's user-data, rendered by src/userdata/render.ts.
# Runs once, as root, from cloud-init. It runs one job and then always powers off.
# The JIT config never reaches argv, a log, a file, or a job's environment.
# Full-line comments are stripped when rendered (16 KB limit), so keep them on their own lines.
set -Eeuo pipefail
umask 077
export LC_ALL=C TZ=UTC AWS_PAGER=''
# A write to a closed stdout (journald exiting at shutdown) must fail, not kill us (and our children).
trap '' PIPE

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
SR_POOL=''
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
RUNNER_PID=''
TAGGER_PIDS=()
START_MS=${SPOT_RUNNER_START_MS:-$((${EPOCHREALTIME/./} / 1000))}
# Test-only: the supervisor's unit name (the real machine uses the default).
UNIT=${SPOT_RUNNER_UNIT:-spot-runner-bootstrap}
# Warm pool (SR_POOL set): the first boot stops at the checkpoint before the JIT read. /run is
# gone after a stop, so the resume state lives on the EBS disk; cloud-init runs user-data once
# per instance but scripts/per-boot on every boot, so the hook there runs us again.
POOL_DIR=$SR_ROOT/var/lib/spot-runner
POOL_HOOK=$SR_ROOT/var/lib/cloud/scripts/per-boot/spot-runner-resume
RESUMING=''
[[ -z $SR_POOL || ! -e $POOL_DIR/pooled ]] || RESUMING=1

log() {
  local ts
  printf -v ts '%(%Y-%m-%dT%H:%M:%SZ)T' -1
  printf '%s spot-runner[%s]: %s\n' "$ts" "$SR_LABEL" "$*" 2>/dev/null || true
}

now_ms() { NOW=$((${EPOCHREALTIME/./} / 1000)); }

# Tag values: EC2-safe charset, at most 200 chars.
sanitize() {
  local s=${1//[^A-Za-z0-9._:\/@+-]/-}
  printf '%s' "${s:0:200}"
}

# EC2 endpoint: AWS_ENDPOINT_URL(_EC2) is honoured as the AWS CLI does (the lab, the VM suite).
EC2_ENDPOINT=${AWS_ENDPOINT_URL_EC2:-${AWS_ENDPOINT_URL:-https://ec2.$SR_REGION.amazonaws.com}}
EC2_ENDPOINT=${EC2_ENDPOINT%/}

json_field() { sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p" | head -n 1; }

# curl config with the credentials (never argv): the environment's, else the instance role's.
ec2_creds() {
  local role j
  if [[ -n ${AWS_ACCESS_KEY_ID:-} ]]; then
    printf 'user = "%s:%s"\n' "$AWS_ACCESS_KEY_ID" "${AWS_SECRET_ACCESS_KEY:-}"
    [[ -z ${AWS_SESSION_TOKEN:-} ]] || printf 'header = "x-amz-security-token: %s"\n' "$AWS_SESSION_TOKEN"
    return 0
  fi
  role=$(curl -sf --max-time 3 -H @"$PRIV/imds-header" "$IMDS/latest/meta-data/iam/security-credentials/" | head -n 1) || return 1
  j=$(curl -sf --max-time 3 -H @"$PRIV/imds-header" "$IMDS/latest/meta-data/iam/security-credentials/$role") || return 1
  printf 'user = "%s:%s"\nheader = "x-amz-security-token: %s"\n' "$(json_field AccessKeyId <<<"$j")" \
    "$(json_field SecretAccessKey <<<"$j")" "$(json_field Token <<<"$j")"
}

# tag_now <key-suffix> <value> [attempts]: EC2 CreateTags signed by curl (SigV4). Not the aws
# CLI: its Python start-up takes 10-70 s a call under emulation, more than a power-down leaves.
# A slow answer delays a tag; only one that keeps failing for minutes gives up.
tag_now() {
  local iid=$IID try cfg
  [[ -n $iid ]] || iid=$(cat "$PRIV/instance-id" 2>/dev/null) || return 0
  cfg=$PRIV/ec2-$BASHPID.curl
  for ((try = 1; try <= ${3:-3}; try++)); do
    if ec2_creds >"$cfg" 2>/dev/null && curl -sf -o /dev/null --max-time 60 -K "$cfg" -A spot-runner-bootstrap \
      --aws-sigv4 "aws:amz:$SR_REGION:ec2" --data-urlencode Action=CreateTags \
      --data-urlencode Version=2016-11-15 --data-urlencode "ResourceId.1=$iid" \
      --data-urlencode "Tag.1.Key=spot-runner:$1" --data-urlencode "Tag.1.Value=$2" "$EC2_ENDPOINT/"; then
      rm -f "$cfg"
      return 0
    fi
    sleep 1
  done
  rm -f "$cfg"
  log "warning: could not tag $1 $2"
  return 1
}

# Phase tags are written in the background, in order, each once: set_phase queues the phase
# and starts a tagger; taggers take turns on a lock and write whatever is queued and not yet
# written. A slow call delays the next tag; none is dropped.
set_phase() {
  printf '%s\n' "$1" >"$PRIV/phase" || return 0
  printf '%s\n' "$1" >>"$PRIV/phase-queue"
  (
    trap - ERR
    exec 9>>"$PRIV/tag.lock"
    flock 9 || exit 0
    n=$(cat "$PRIV/phase-done" 2>/dev/null || echo 0)
    while p=$(sed -n "$((n + 1))p" "$PRIV/phase-queue") && [[ -n $p ]]; do
      # Not written after its attempts: stays queued; the next tagger (or power_off) retries it.
      tag_now phase "$p" || exit 0
      n=$((n + 1))
      printf '%s\n' "$n" >"$PRIV/phase-done"
    done
  ) &
  TAGGER_PIDS+=($!)
}

# stop_runner <seconds>: the runner gets SIGTERM first (run.sh forwards it to the listener,
# RUNNER_MANUALLY_TRAP_SIG) and that long to report its job.
stop_runner() {
  local i
  [[ -n $RUNNER_PID ]] && kill -0 "$RUNNER_PID" 2>/dev/null || return 0
  log "stopping the runner (SIGTERM, up to $1 s)"
  kill -TERM "$RUNNER_PID" 2>/dev/null
  for ((i = 0; i < $1 * 10; i++)); do
    kill -0 "$RUNNER_PID" 2>/dev/null || { log "runner exited"; return 0; }
    sleep 0.1
  done
  log "runner still running after $1 s"
}

# The power-off itself, harsher if systemd does not answer (a TERM now only ends us). Never returns.
halt_machine() {
  systemctl poweroff || shutdown -h now || poweroff -f
  trap 'exit 0' TERM
  sleep 120 &
  wait $!
  poweroff -f
  exit 1
}

# The power-off reason, for jobs and observers: written whole or not at all (a reader of a
# truncating `>` can see it empty).
write_reason() {
  printf '%s\n' "$1" >"$RUN/.poweroff-reason.tmp" 2>/dev/null &&
    chmod 0644 "$RUN/.poweroff-reason.tmp" &&
    mv -f "$RUN/.poweroff-reason.tmp" "$RUN/poweroff-reason"
}

# Console first, then the phase tag, then power off. Idempotent; never returns.
power_off() {
  local reason phase first
  reason=$(sanitize "$1")
  [[ -z $POWERING_OFF ]] || return 0
  POWERING_OFF=1
  # systemd stops our unit once we ask for the power-off: that SIGTERM must not cut the final
  # tag short (the unit's stop timeout still bounds us).
  trap - ERR EXIT
  trap '' TERM INT HUP
  set +e
  # Another power-off got there first (the deadline timer): keep its reason.
  if first=$(cat "$RUN/poweroff-reason" 2>/dev/null) && [[ -n $first ]]; then
    log "power-off: $reason, but already powering off: $first"
    reason=$first
  else
    log "power-off: $reason"
    printf 'spot-runner: power-off: %s\n' "$reason" >>"$CONSOLE" 2>/dev/null
    write_reason "$reason"
  fi
  if [[ $reason == job-done ]]; then phase=shutting-down; else phase=failed:$reason; fi
  # Keep the spot notice visible to stop after the final phase is written.
  [[ ! -e $RUN/interrupted ]] || phase=interrupted:$phase
  phase=$(sanitize "$phase")
  printf '%s\n' "$phase" >"$PRIV/phase" 2>/dev/null
  # Queued phases go first (a few seconds at most), then the final one. A power-down leaves
  # one unit stop timeout for this and the runner, so there the final phase jumps the queue.
  if [[ $reason == signal-TERM ]]; then
    for p in "${TAGGER_PIDS[@]}"; do
      pkill -TERM -P "$p" 2>/dev/null
      kill -TERM "$p" 2>/dev/null
    done
  else
    local i
    for ((i = 0; i < 300; i++)); do
      [[ $(cat "$PRIV/phase-done" 2>/dev/null || echo 0) -lt $(wc -l <"$PRIV/phase-queue" 2>/dev/null || echo 0) ]] || break
      sleep 0.1
    done
  fi
  (tag_now phase "$phase" 2 && log "final phase tag written: $phase") &
  local final_tag=$!
  stop_runner "$([[ $reason == signal-TERM ]] && echo 25 || echo 10)"
  if [[ -n $HOOKS_PID ]] && kill -0 "$HOOKS_PID" 2>/dev/null; then
    log "waiting for interruption hooks to finish"
    wait "$HOOKS_PID"
  fi
  wait "$final_tag"
  # Already shutting down (an ACPI power-down, spot reclaim, TerminateInstances): just let it.
  if [[ $reason == signal-TERM ]] && [[ $(systemctl is-system-running 2>/dev/null) == stopping ]]; then
    log "system is already powering off"
    exit 0
  fi
  halt_machine
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
# cloud-final must finish (cloud-init status done) and a power-down must stop us early, so the
# supervisor runs in its own unit: stopped before the network with SIGTERM to this shell only.
if [[ -z ${SPOT_RUNNER_SUPERVISED:-} ]]; then
  cp "$0" "$PRIV/bootstrap.sh"
  if systemd-run --quiet --unit="$UNIT" --description="spot-runner bootstrap" \
    --setenv=SPOT_RUNNER_SUPERVISED=1 --setenv=SPOT_RUNNER_START_MS="$START_MS" \
    --property=KillMode=mixed --property=TimeoutStopSec=40 \
    --property=After=network-online.target --property=Wants=network-online.target \
    --property=StandardOutput=journal+console --property=StandardError=journal+console \
    /bin/bash "$PRIV/bootstrap.sh"; then
    log "supervisor handed to unit $UNIT.service"
    trap - ERR EXIT TERM INT HUP
    exit 0
  fi
  log "warning: could not start unit $UNIT; supervising from here"
fi
printf '%s\n' "$$" >"$PRIV/bootstrap.pid"
log "bootstrap started (max-lifetime ${SR_MAX_LIFETIME_SECONDS}s, idle-timeout ${SR_IDLE_TIMEOUT_SECONDS}s)"
DEADLINE_MS=$((START_MS + SR_MAX_LIFETIME_SECONDS * 1000))
# Line one: the OS shutdown scheduler, a minute after the others so they can give the reason.
shutdown -h "+$((SR_MAX_LIFETIME_MINUTES_CEIL + 1))" "spot-runner: max-lifetime reached" >/dev/null 2>&1 ||
  log "warning: could not schedule shutdown +$((SR_MAX_LIFETIME_MINUTES_CEIL + 1))"
# Line two: a systemd timer running a standalone copy of power_off (it works even if we hang).
{
  printf '#!/bin/bash\nset -u\n'
  declare -p SR_REGION SR_LABEL CONSOLE RUN PRIV IMDS EC2_ENDPOINT
  printf 'IID= POWERING_OFF= HOOKS_PID= RUNNER_PID=\nTAGGER_PIDS=()\n'
  declare -f log sanitize json_field ec2_creds tag_now stop_runner halt_machine write_reason power_off
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

# The hardware fingerprint (benchmarks compare runs by it): a tag for start/stop, a file for jobs.
fingerprint() {
  local cpu ucode smt gov turbo=unknown f
  cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
  ucode=$(sed -n 's/^microcode[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
  case $(cat /sys/devices/system/cpu/smt/active 2>/dev/null) in 1) smt=on ;; 0) smt=off ;; *) smt=unknown ;; esac
  gov=$(cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor 2>/dev/null) || gov=none
  f=/sys/devices/system/cpu/intel_pstate/no_turbo
  if [[ -r $f ]]; then
    [[ $(<"$f") == 0 ]] && turbo=on || turbo=off
  elif [[ -r /sys/devices/system/cpu/cpufreq/boost ]]; then
    [[ $(</sys/devices/system/cpu/cpufreq/boost) == 1 ]] && turbo=on || turbo=off
  fi
  printf 'cpu=%s ucode=%s kernel=%s smt=%s gov=%s turbo=%s type=%s az=%s' "${cpu:-unknown}" "${ucode:-none}" \
    "$(uname -r)" "$smt" "$gov" "$turbo" "$(imds_get meta-data/instance-type || echo unknown)" \
    "$(imds_get meta-data/placement/availability-zone || echo unknown)"
}
FP=$(fingerprint 2>/dev/null | tr -c 'A-Za-z0-9 +=._:/@-' '-' | head -c 255) || FP=unknown
printf '%s\n' "$FP" >"$RUN/fingerprint" && chmod 0644 "$RUN/fingerprint"
log "fingerprint: $FP"
(
  trap - ERR
  tag_now fingerprint "$FP"
) &

RUNNER_UID=$(id -u "$RUNNER_USER" 2>/dev/null) || power_off runner-user-missing
RUNNER_GID=$(id -g "$RUNNER_USER")
RUNNER_HOME=$(getent passwd "$RUNNER_USER" | cut -d: -f6)
[[ -x $RUNNER_DIR/run.sh ]] || power_off runner-missing
chown "$RUNNER_UID:$RUNNER_GID" "$JOBDIR"
chmod 0755 "$JOBDIR"
rm -f "$JOBDIR/started" "$JOBDIR/completed" "$RUN/interrupted"

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
LISTENING=''

# The version the listener says it runs: a self-update makes it differ from the image's.
RUNNER_VERSION_TAGGED=''
tag_runner_version() {
  local v
  v=$(sed -n "s/.*Current runner version: '\([0-9.]*\)'.*/\1/p" "$PRIV/runner.log" 2>/dev/null | tail -n 1)
  [[ -n $v && $v != "$RUNNER_VERSION_TAGGED" ]] || return 0
  RUNNER_VERSION_TAGGED=$v
  log "runner version $v"
  (
    trap - ERR
    tag_now runner-version "$v"
  ) &
}

# supervise <pid> <stage>: wait for pid, enforcing the deadline, the idle timeout (runner
# stage) and the spot watch. Sets CHILD_RC.
supervise() {
  local pid=$1 stage=$2
  while kill -0 "$pid" 2>/dev/null; do
    now_ms
    ((NOW < DEADLINE_MS)) || power_off max-lifetime
    if [[ $stage == runner && -z $JOB_STARTED ]]; then
      # Tagged once the listener says which version it runs, so start can report it.
      [[ -n $RUNNER_VERSION_TAGGED ]] || tag_runner_version
      # The listener prints this once its session exists (Runner.Listener/Runner.cs); start
      # waits for the tag. The log is root-only (PRIV), so a job never reads it.
      if [[ -z $LISTENING ]] && grep -qs 'Listening for Jobs' "$PRIV/runner.log"; then
        LISTENING=1
        log "runner listening for jobs"
        [[ -n $RUNNER_VERSION_TAGGED ]] || tag_runner_version
        set_phase listening
      fi
      if [[ -e $JOBDIR/started ]]; then
        JOB_STARTED=1
        log "job started"
        set_phase job-started
        tag_runner_version
      elif ((NOW >= IDLE_DEADLINE_MS)); then
        power_off idle-timeout
      fi
    fi
    if [[ -z $SPOT_NOTICED ]] && ((NOW >= NEXT_SPOT)); then
      spot_check
      NEXT_SPOT=$((NOW + SPOT_POLL_MS))
    fi
    # Until the listener is listening, look often: start is waiting for that tag.
    if [[ $stage == runner && -z $LISTENING && $TICK == 1 ]]; then sleep 0.2; else sleep "$TICK"; fi
  done
  CHILD_RC=0
  wait "$pid" || CHILD_RC=$?
}

# ---- 4. The user's pre-runner script: root, bounded, before the runner. ----
if [[ -n $SR_PRE_RUNNER_B64 && -z $RESUMING ]]; then
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

# ---- 4b. Warm pool: stop before any JIT config exists; the next boot resumes right here. ----
# Only the phase tag leaves the machine; the runner never started. Same shutdown path as a
# power-off, but the pool's launch template says InstanceInitiatedShutdownBehavior=stop.
pool_checkpoint() {
  local i
  mkdir -p "$POOL_DIR" "${POOL_HOOK%/*}"
  chmod 0700 "$POOL_DIR"
  install -m 0700 "$0" "$POOL_DIR/bootstrap.sh"
  printf '#!/bin/bash\nexec /bin/bash %q\n' "$POOL_DIR/bootstrap.sh" >"$POOL_HOOK"
  chmod 0700 "$POOL_HOOK"
  : >"$POOL_DIR/pooled"
  sync
  POWERING_OFF=1
  trap - ERR EXIT
  trap '' TERM INT HUP
  set +e
  set_phase pooled
  for ((i = 0; i < 300; i++)); do
    [[ $(cat "$PRIV/phase-done" 2>/dev/null || echo 0) -lt $(wc -l <"$PRIV/phase-queue" 2>/dev/null || echo 0) ]] || break
    sleep 0.1
  done
  log "pooled: stopping at the checkpoint (pool $SR_POOL)"
  printf 'spot-runner: pooled: stopping (pool %s)\n' "$SR_POOL" >>"$CONSOLE" 2>/dev/null
  write_reason pooled
  halt_machine
}
if [[ -n $RESUMING ]]; then
  rm -f "$POOL_HOOK" "$POOL_DIR/pooled"
  log "resumed from pool $SR_POOL: deadlines count from this boot"
elif [[ -n $SR_POOL ]]; then
  pool_checkpoint
fi

# ---- 5. The JIT config: own parameter only, bounded retries, then delete it. ----
# It lives only in this shell's memory (root) and the runner's environment.
PARAM="$SR_PARAM_PREFIX/$IID"
JIT=''
now_ms
PARAM_END=$((NOW + SR_PARAM_WAIT_SECONDS * 1000))
DELAY=0.25
# Jitter: a hundred machines launched together do not all read SSM in the same instant.
JITTER_MS=$((RANDOM % 2000))
log "waiting ${JITTER_MS} ms (jitter) before reading $PARAM"
sleep "$((JITTER_MS / 1000)).$(printf '%03d' $((JITTER_MS % 1000)))"
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
# A pool machine's parameter is also its claim: overwritten, not deleted, so the name stays taken
# while it lives and no later claim can win it (src/pool.ts). The mark carries the config's hash
# so its claimer can tell it was read (CONSUMED_PREFIX in src/tags.ts).
for _ in 1 2 3; do
  if [[ -n $RESUMING ]]; then
    MARK="consumed:$(printf '%s' "$JIT" | sha256sum | cut -d' ' -f1)"
    aws ssm put-parameter --region "$SR_REGION" --name "$PARAM" --type SecureString --overwrite \
      --value "$MARK" >/dev/null 2>"$PRIV/ssm-err" && break
  elif aws ssm delete-parameter --region "$SR_REGION" --name "$PARAM" >/dev/null 2>"$PRIV/ssm-err"; then
    break
  fi
  log "warning: could not clear $PARAM (stop/reap will)"
  sleep 1
done
log "JIT config read from $PARAM"

# ---- 6. Job hooks: run as the runner user by the worker; they only touch markers. ----
for h in started completed; do
  {
    printf '#!/bin/bash\n'
    printf ': >%q 2>/dev/null || true\nexit 0\n' "$JOBDIR/$h"
  } >"$ETC/hooks/job-$h.sh"
  chmod 0755 "$ETC/hooks/job-$h.sh"
done

# Jobs' PATH: the listener reads only <runner>/.env (run.sh and run-helper.sh never read .path;
# only the service wrapper runsvc.sh does), so the image's .path goes into .env and PATH.
RUNNER_PATH=$PATH
if [[ -s $RUNNER_DIR/.path ]]; then
  RUNNER_PATH=$(head -n 1 "$RUNNER_DIR/.path")
  {
    grep -v '^PATH=' "$RUNNER_DIR/.env" 2>/dev/null || true
    printf 'PATH=%s\n' "$RUNNER_PATH"
  } >"$PRIV/runner.env"
  install -m 0644 -o "$RUNNER_UID" -g "$RUNNER_GID" "$PRIV/runner.env" "$RUNNER_DIR/.env"
  log "job PATH from .path: $RUNNER_PATH"
fi

# ---- 7. Start the runner as the unprivileged user, with a clean environment. ----
# The config is exported only inside this subshell. The runner reads
# ACTIONS_RUNNER_INPUT_JITCONFIG and removes it before it starts any job (docs/security.md).
# Its output goes to a root-only log: the listener's result line tells a failed job apart.
: >"$PRIV/runner.log"
(
  trap - ERR EXIT TERM INT HUP PIPE
  for v in $(compgen -e); do unset "$v" 2>/dev/null || true; done
  for f in $(compgen -A function); do unset -f "$f"; done
  export PATH=$RUNNER_PATH HOME=$RUNNER_HOME USER=$RUNNER_USER LOGNAME=$RUNNER_USER LANG=C.UTF-8
  export ACTIONS_RUNNER_HOOK_JOB_STARTED=$ETC/hooks/job-started.sh
  export ACTIONS_RUNNER_HOOK_JOB_COMPLETED=$ETC/hooks/job-completed.sh
  # run.sh forwards SIGTERM to the listener (as SIGINT) only with this set.
  export RUNNER_MANUALLY_TRAP_SIG=1
  export ACTIONS_RUNNER_INPUT_JITCONFIG=$JIT
  cd "$RUNNER_DIR"
  umask 022
  # A background job of a script starts with SIGINT ignored, and an ignored signal stays
  # ignored across exec: the listener would never see run.sh's forwarded SIGINT. Reset it.
  exec setpriv --reuid="$RUNNER_UID" --regid="$RUNNER_GID" --init-groups -- \
    env --default-signal=INT,QUIT,PIPE ./run.sh
) </dev/null >>"$PRIV/runner.log" 2>&1 &
RUNNER_PID=$!
JIT=''
now_ms
log "runner started (pid $RUNNER_PID) $((NOW - START_MS)) ms after bootstrap start"
set_phase runner-started
IDLE_DEADLINE_MS=$((NOW + SR_IDLE_TIMEOUT_SECONDS * 1000))

# ---- 8. One job, then power off, whatever happened. ----
supervise "$RUNNER_PID" runner
tag_runner_version
sed 's/^/runner: /' "$PRIV/runner.log" | tail -n 40 | while IFS= read -r l; do log "$l"; done
# run.sh exits 0 for nearly everything: the listener's own line says how the job ended.
RESULT=$(sed -n 's/.*completed with result: \([A-Za-z]*\).*/\1/p' "$PRIV/runner.log" | tail -n 1)
if [[ -n $JOB_STARTED || -e $JOBDIR/started || -e $JOBDIR/completed || -n $RESULT ]]; then
  case $RESULT in
    Succeeded) power_off job-done ;;
    '') [[ -e $JOBDIR/completed ]] || power_off "runner-exited:exit-$CHILD_RC" ;;
  esac
  power_off "job-failed:${RESULT:-unknown}"
fi
power_off "runner-exited-without-job:exit-$CHILD_RC"
