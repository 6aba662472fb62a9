#!/usr/bin/env bats
# The REAL bootstrap, rendered by the REAL renderer, run in a sandbox (README.md).
# Every case asserts that the machine powered off, and why.

setup_file() {
  if [[ -z ${SPOT_RUNNER_RENDER_DIR:-} ]]; then
    export SPOT_RUNNER_RENDER_DIR=$BATS_FILE_TMPDIR/renderer
    node "$BATS_TEST_DIRNAME/build-renderer.mjs" "$SPOT_RUNNER_RENDER_DIR"
  fi
}

setup() {
  # shellcheck source=user-data/test/sandbox.bash
  . "$BATS_TEST_DIRNAME/sandbox.bash"
  SB_RENDER_DIR=$SPOT_RUNNER_RENDER_DIR
  sb_create "$BATS_TEST_TMPDIR/sb"
  sb_imds_start
  # Secret patterns live outside the sandbox so scans of the sandbox never see them.
  (umask 077 && printf '%s\n' "$SB_SECRET" >"$BATS_TEST_TMPDIR/secret.pat")
}

teardown() {
  sb_cleanup
}

# run_boot <options-json> [timeout]: render, boot, wait for power-off.
run_boot() {
  sb_render "$1"
  sb_boot
  sb_wait_poweroff "${2:-20}"
}

assert_reason() {
  local got
  got=$(sb_reason)
  [[ $got == "$1" ]] || { echo "power-off reason: want '$1', got '$got'" >&2; cat "$SB/stdout" >&2; return 1; }
  grep -qF "spot-runner: power-off: $1" "$SB/console"
  [[ -s $SB_STATE/poweroff ]]
}

last_phase() { tail -n 1 "$SB_STATE/tags.log" | sed 's/.*Value=//'; }

wait_for_file() {
  local i
  for ((i = 0; i < ${2:-100}; i++)); do
    [[ -e $1 ]] && return 0
    sleep 0.1
  done
  echo "timed out waiting for $1" >&2
  return 1
}

# Fails if the secret occurs in any file under the given paths.
assert_secret_in_no_file() {
  local hits
  hits=$(grep -rlF -f "$BATS_TEST_TMPDIR/secret.pat" "$@" 2>/dev/null || true)
  [[ -z $hits ]] || { echo "JIT config found in: $hits" >&2; return 1; }
}

@test "normal job: reads its own parameter (after retries), deletes it, runs one job, powers off" {
  # Visible only after the first read (which waits up to 2 s of jitter).
  sb_put_param "/spot-runner/jit/$SB_LABEL/$SB_IID" 3
  run_boot "$(sb_options)"
  assert_reason job-done
  [[ $(last_phase) == shutting-down ]]
  grep -q 'Value=booting' "$SB_STATE/tags.log"
  grep -q 'Value=runner-started' "$SB_STATE/tags.log"
  grep -q 'Value=job-started' "$SB_STATE/tags.log"
  [[ -e $SB_OUT/jit-ok ]]
  (($(grep -c 'ssm get-parameter' "$SB_STATE/aws-calls.log") >= 2))
  [[ $(cat "$SB_STATE/ssm-deleted.log") == "/spot-runner/jit/$SB_LABEL/$SB_IID" ]]
  # Deadline lines one and two were set up first.
  grep -qx -- '-h +2 spot-runner: max-lifetime reached' "$SB_STATE/shutdown.log"
  grep -q -- '--on-active=60s .*power-off.sh max-lifetime' "$SB_STATE/systemd-run.log"
  # Job steps are kept away from IMDS; the runner runs as the runner user.
  grep -q -- "iptables -w -I OUTPUT -m owner --uid-owner $(id -u) -d 169.254.169.254/32 -j REJECT" "$SB_STATE/iptables.log"
  grep -q -- "--reuid=$(id -u) --regid=$(id -g) --init-groups -- env --default-signal=INT,QUIT,PIPE ./run.sh" "$SB_RUNNER_DIR/setpriv.log"
  # IMDSv2 only: a token first, and no GET was refused.
  [[ $(head -n 1 "$SB_STATE/imds.log") == 'PUT /latest/api/token' ]]
}

@test "no job until idle-timeout: powers off with reason idle-timeout" {
  sb_fake_runner FAKE_JOB=0
  run_boot "$(sb_options idleTimeoutMinutes=0.05 jobImdsAccess=true)"
  assert_reason idle-timeout
  [[ $(last_phase) == failed:idle-timeout ]]
  [[ -e $SB_OUT/jit-ok && ! -e $SB_OUT/job.pid ]]
  # job-imds-access: no firewall rule.
  [[ ! -e $SB_STATE/iptables.log ]]
  grep -q 'job-imds-access' "$SB/stdout"
}

@test "deadline passes while a job hangs: powers off with reason max-lifetime" {
  sb_fake_runner FAKE_JOB_TENTHS=600
  run_boot "$(sb_options maxLifetimeMinutes=0.05 idleTimeoutMinutes=1)"
  assert_reason max-lifetime
  [[ $(last_phase) == failed:max-lifetime ]]
  [[ -e $SB_OUT/job.pid ]]
}

@test "deadline line two: the timer powers off even when the bootstrap itself is stuck" {
  sb_fake_runner FAKE_JOB_TENTHS=600
  sb_render "$(sb_options maxLifetimeMinutes=0.05 idleTimeoutMinutes=1)"
  sb_boot
  wait_for_file "$SB_OUT/job.pid"
  kill -STOP "$(sb_bootstrap_pid)"
  sb_wait_poweroff 15
  assert_reason max-lifetime
  [[ $(last_phase) == failed:max-lifetime ]]
}

@test "spot notice mid-job: marker for the job, hooks run bounded, then power-off" {
  local d=$SB_ROOT/etc/spot-runner/interruption.d
  mkdir -p "$d"
  # shellcheck disable=SC2016 # the hook expands it, not this test
  printf '#!/bin/bash\necho "$SPOT_RUNNER_INTERRUPTION_NOTICE" >%q/hook-checkpoint\n' "$SB_OUT" >"$d/10-checkpoint"
  printf '#!/bin/bash\nsleep 30\n: >%q/hook-slow-finished\n' "$SB_OUT" >"$d/20-slow"
  printf '#!/bin/bash\n: >%q/hook-after\n' "$SB_OUT" >"$d/30-after"
  printf '#!/bin/bash\n: >%q/hook-not-executable\n' "$SB_OUT" >"$d/40-disabled"
  chmod +x "$d/10-checkpoint" "$d/20-slow" "$d/30-after"
  sb_fake_runner FAKE_JOB_TENTHS=30
  sb_render "$(sb_options)"
  sb_boot
  wait_for_file "$SB_OUT/job.pid"
  sb_spot_notice
  sb_wait_poweroff 20
  assert_reason job-done
  local marker=$SB_ROOT/run/spot-runner/interrupted
  [[ $(stat -c %a "$marker") == 644 ]]
  grep -q '"action":"terminate"' "$marker"
  # The job saw it while running.
  grep -q '"action":"terminate"' "$SB_OUT/job-saw-interrupted"
  [[ $(cat "$SB_OUT/hook-checkpoint") == "$marker" ]]
  [[ -e $SB_OUT/hook-after ]]
  [[ ! -e $SB_OUT/hook-slow-finished && ! -e $SB_OUT/hook-not-executable ]]
  grep -q 'Value=interrupted' "$SB_STATE/tags.log"
  grep -q 'spot interruption notice' "$SB/stdout"
  grep -q 'interruption hook 20-slow exited 124' "$SB/stdout"
}

@test "SSM read denied: power-off with reason, runner never started" {
  echo AccessDeniedException >"$SB_STATE/fail/ssm-get-parameter"
  run_boot "$(sb_options parameterWaitSeconds=1)"
  assert_reason ssm-read-failed:AccessDeniedException
  [[ $(last_phase) == failed:ssm-read-failed:AccessDeniedException ]]
  [[ ! -e $SB_OUT/runner-exec-time ]]
}

@test "SSM parameter never appears: power-off with reason ParameterNotFound" {
  rm -f "$SB_STATE/ssm/"*
  run_boot "$(sb_options parameterWaitSeconds=1)"
  assert_reason ssm-read-failed:ParameterNotFound
  [[ ! -e $SB_OUT/runner-exec-time ]]
}

@test "JIT config: in no argv, no file, no job-visible environment" {
  sb_fake_runner FAKE_JOB_TENTHS=25
  sb_render "$(sb_options)"
  sb_boot
  wait_for_file "$SB_OUT/job.pid"
  local runner_pid job_pid f scanned=0 found=''
  runner_pid=$(cat "$SB_OUT/runner.pid")
  job_pid=$(cat "$SB_OUT/job.pid")
  kill -0 "$runner_pid" && kill -0 "$job_pid"
  # Every process's argv (bash builtins only, so the scan itself puts nothing in argv).
  for f in /proc/[0-9]*/cmdline; do
    local -a argv=()
    { mapfile -d '' argv <"$f"; } 2>/dev/null || continue
    scanned=$((scanned + 1))
    [[ "${argv[*]}" == *"$SB_SECRET"* ]] && found+=" $f"
  done
  [[ -z $found ]] || { echo "JIT config in argv of:$found" >&2; return 1; }
  ((scanned > 5))
  # The job step's live environment and the one it dumped.
  local envblob
  envblob=$(tr '\0' '\n' <"/proc/$job_pid/environ")
  [[ $envblob != *"$SB_SECRET"* && $envblob != *ACTIONS_RUNNER_INPUT_* ]]
  [[ $(cat "$SB_OUT/job-env") != *"$SB_SECRET"* ]]
  grep -q '^ACTIONS_RUNNER_HOOK_JOB_STARTED=' "$SB_OUT/job-env"
  # The bootstrap never exports it.
  [[ $(tr '\0' '\n' <"/proc/$(sb_bootstrap_pid)/environ") != *"$SB_SECRET"* ]]
  # No file anywhere in the sandbox (runner dir, /etc, /run, logs, tmp) holds it.
  assert_secret_in_no_file "$SB"
  sb_wait_poweroff 20
  assert_reason job-done
  assert_secret_in_no_file "$SB"
  # Positive control: the runner did receive the right config.
  [[ -e $SB_OUT/jit-ok ]]
  # Root-only state stays root-only.
  [[ $(stat -c %a "$SB_ROOT/run/spot-runner/private") == 700 ]]
  [[ $(stat -c %a "$SB_ROOT/run/spot-runner/private/imds-header") == 600 ]]
}

@test "pre-runner-script fails: power-off with reason, before the JIT config is read" {
  run_boot "$(sb_options 'preRunnerScript="echo pre-runner says hi; exit 7"')"
  assert_reason pre-runner-script-failed:exit-7
  [[ $(last_phase) == failed:pre-runner-script-failed:exit-7 ]]
  grep -q 'pre-runner says hi' "$SB/stdout"
  # (A `! grep` here would be ignored by bats' errexit: count instead.)
  [[ ! -e $SB_STATE/aws-calls.log ]] || (($(grep -c 'get-parameter' "$SB_STATE/aws-calls.log" || true) == 0))
  [[ ! -e $SB_OUT/runner-exec-time ]]
}

@test "pre-runner-script over its time limit: power-off with reason pre-runner-script-timeout" {
  run_boot "$(sb_options 'preRunnerScript="sleep 30"' preRunnerTimeoutMinutes=0.02)"
  assert_reason pre-runner-script-timeout
}

@test "pre-runner-script with quotes, \$(), backticks and heredoc markers runs verbatim as root" {
  local script json
  script=$(printf '%s\n' \
    "cat >'$SB_OUT/pre-ran' <<'EOF'" \
    "it's \"quoted\" \$(touch /tmp/pwned-$$) \`id\` \\\\ EOF-not #@@VALUES-END@@" \
    'EOF' \
    "id -u >>'$SB_OUT/pre-ran'")
  json=$(jq -Rs . <<<"$script")
  run_boot "$(sb_options "preRunnerScript=$json")"
  assert_reason job-done
  [[ $(head -n 1 "$SB_OUT/pre-ran") == "it's \"quoted\" \$(touch /tmp/pwned-$$) \`id\` \\\\ EOF-not #@@VALUES-END@@" ]]
  [[ $(tail -n 1 "$SB_OUT/pre-ran") == "$(id -u)" ]]
  [[ ! -e /tmp/pwned-$$ ]]
}

@test "IMDS firewall cannot be installed: power-off with reason" {
  : >"$SB_STATE/fail/iptables"
  run_boot "$(sb_options)"
  assert_reason imds-firewall-failed
  [[ ! -e $SB_OUT/runner-exec-time ]]
}

@test "any unexpected error (trap first): power-off with the failing line on the console" {
  touch "$SB_ROOT/run"
  run_boot "$(sb_options)"
  grep -qE 'spot-runner: power-off: bootstrap-exited:line-[0-9]+:exit-1' "$SB/console"
  [[ -s $SB_STATE/poweroff ]]
}

@test "rendered user-data is shellcheck clean and under 16 KB" {
  sb_render "$(sb_options 'preRunnerScript="echo hi"')"
  shellcheck -s bash "$SB/user-data.sh"
  (($(wc -c <"$SB/user-data.sh") < 16384))
}

@test "supervisor runs in its own systemd unit (cloud-final can finish), stopped with SIGTERM to it alone" {
  run_boot "$(sb_options)"
  assert_reason job-done
  local call
  call=$(grep -- '--unit=spot-runner-bootstrap ' "$SB_STATE/systemd-run.log")
  [[ $call == *--setenv=SPOT_RUNNER_SUPERVISED=1* && $call == *--property=KillMode=mixed* ]]
  [[ $call == *--property=After=network-online.target* && $call == *"/bin/bash $SB_ROOT/run/spot-runner/private/bootstrap.sh"* ]]
  grep -q 'supervisor handed to unit spot-runner-bootstrap.service' "$SB/stdout"
  # The deadline lines are set up once, by the supervisor.
  [[ $(grep -c -- '--on-active=' "$SB_STATE/systemd-run.log") == 1 ]]
}

@test "systemd-run refused: the bootstrap supervises in place and still runs the job" {
  : >"$SB_STATE/fail/systemd-run-service"
  run_boot "$(sb_options)"
  assert_reason job-done
  grep -q 'could not start unit spot-runner-bootstrap; supervising from here' "$SB/stdout"
}

@test "the image's .path reaches the job's PATH through the runner's .env" {
  printf '%s\n' '/opt/kani/bin:/usr/local/cuda/bin:/usr/bin:/bin' >"$SB_RUNNER_DIR/.path"
  printf '%s\n' 'LANG=C.UTF-8' 'PATH=/stale' >"$SB_RUNNER_DIR/.env"
  run_boot "$(sb_options)"
  assert_reason job-done
  [[ $(cat "$SB_OUT/job-path") == /opt/kani/bin:/usr/local/cuda/bin:/usr/bin:/bin ]]
  grep -qx 'LANG=C.UTF-8' "$SB_RUNNER_DIR/.env"
  [[ $(grep -c '^PATH=' "$SB_RUNNER_DIR/.env") == 1 ]]
}

@test "a failed job is reported as job-failed, not job-done (run.sh exits 0 either way)" {
  sb_fake_runner FAKE_STEP_EXIT=1
  run_boot "$(sb_options)"
  assert_reason job-failed:Failed
  [[ $(last_phase) == failed:job-failed:Failed ]]
  [[ -e $SB_RUNNER_DIR/../root/run/spot-runner/job/completed ]]
}

@test "a job that fails before the job-started hook is job-failed, not runner-exited-without-job" {
  sb_fake_runner FAKE_FAIL_BEFORE_HOOK=1
  run_boot "$(sb_options)"
  assert_reason job-failed:Failed
}

@test "SIGTERM mid-job (a power-down): the runner gets SIGTERM first, then reason and final tag" {
  sb_fake_runner FAKE_JOB_TENTHS=300
  sb_render "$(sb_options)"
  sb_boot
  wait_for_file "$SB_OUT/job.pid"
  kill -TERM "$(sb_bootstrap_pid)"
  sb_wait_poweroff 20
  assert_reason signal-TERM
  [[ $(last_phase) == failed:signal-TERM ]]
  # run.sh (RUNNER_MANUALLY_TRAP_SIG) forwarded it to the listener, which cancelled the job.
  [[ -e $SB_OUT/listener-got-sigint ]]
  grep -q 'runner exited' "$SB/stdout"
  grep -q 'final phase tag written: failed:signal-TERM' "$SB/stdout"
}

@test "jitter: the first SSM read waits a short random time" {
  run_boot "$(sb_options)"
  assert_reason job-done
  local ms
  ms=$(sed -n 's/.*waiting \([0-9]*\) ms (jitter).*/\1/p' "$SB/stdout")
  [[ -n $ms ]] && ((ms >= 0 && ms < 2000))
  # The first read really came that much later than the boot.
  local first
  first=$(awk '$2 == "ssm" && $3 == "get-parameter" { print $1; exit }' "$SB_STATE/aws-times.log")
  awk -v a="$SB_BOOT_START" -v b="$first" -v ms="$ms" 'BEGIN { exit !((b - a) * 1000 >= ms) }'
}

@test "slow CLI: a create-tags call slower than 20 s delays the booting tag, never drops it" {
  echo '21 1 booting' >"$SB_STATE/slow/ec2-create-tags"
  sb_fake_runner FAKE_JOB_TENTHS=260
  run_boot "$(sb_options)" 60
  assert_reason job-done
  grep -q 'Value=booting' "$SB_STATE/tags.log"
  grep -q 'Value=job-started' "$SB_STATE/tags.log"
  [[ $(last_phase) == shutting-down ]]
}

@test "runner version and hardware fingerprint are tagged" {
  sb_fake_runner FAKE_VERSION=2.331.0
  run_boot "$(sb_options)"
  assert_reason job-done
  grep -q 'Key=spot-runner:runner-version,Value=2.331.0' "$SB_STATE/tags.log"
  grep -qE 'Key=spot-runner:fingerprint,Value=cpu=.* kernel=.* smt=(on|off|unknown) gov=.* turbo=(on|off|unknown) type=c7i.large az=us-east-1a' "$SB_STATE/tags.log"
  [[ $(stat -c %a "$SB_ROOT/run/spot-runner/fingerprint") == 644 ]]
}

@test "listening: tagged only once the listener prints 'Listening for Jobs', between runner-started and job-started" {
  sb_fake_runner FAKE_CONNECT_DELAY=2
  sb_put_param "/spot-runner/jit/$SB_LABEL/$SB_IID"
  sb_render "$(sb_options)"
  sb_boot
  wait_for_file "$SB_OUT/runner-exec-time"
  # The runner runs but has no session yet: no readiness claimed.
  sleep 1
  [[ ! -e $SB_OUT/listening-time ]]
  [[ $(grep -c 'Value=listening' "$SB_STATE/tags.log") == 0 ]]
  wait_for_file "$SB_OUT/listening-time" 50
  local i
  for ((i = 0; i < 30; i++)); do
    grep -q 'Value=listening' "$SB_STATE/tags.log" && break
    sleep 0.1
  done
  grep -q 'Key=spot-runner:phase,Value=listening' "$SB_STATE/tags.log"
  sb_wait_poweroff 20
  assert_reason job-done
  [[ $(grep -o 'phase,Value=[a-z-]*' "$SB_STATE/tags.log" | sed 's/.*Value=//' | tr '\n' ' ') == 'booting runner-started listening job-started shutting-down ' ]]
  # The listener's output (which the bootstrap watches) is root-only: a job cannot read it.
  [[ $(stat -c %a "$SB_ROOT/run/spot-runner/private/runner.log") == 600 ]]
  [[ $(stat -c %a "$SB_ROOT/run/spot-runner/private") == 700 ]]
  grep -q 'Listening for Jobs' "$SB_ROOT/run/spot-runner/private/runner.log"
}

@test "no session (the listener never says it is listening): no listening tag, idle-timeout" {
  sb_fake_runner FAKE_LISTEN=0
  sb_put_param "/spot-runner/jit/$SB_LABEL/$SB_IID"
  run_boot "$(sb_options idleTimeoutMinutes=0.05)"
  assert_reason idle-timeout
  grep -q 'Value=runner-started' "$SB_STATE/tags.log"
  [[ $(grep -c 'Value=listening' "$SB_STATE/tags.log") == 0 ]]
  [[ $(last_phase) == failed:idle-timeout ]]
}

@test "warm pool: the first boot stops at the checkpoint before any JIT read; the per-boot resume runs one job from there" {
  rm -f "$SB_STATE/ssm/"*
  local opts hook=$SB_ROOT/var/lib/cloud/scripts/per-boot/spot-runner-resume
  opts=$(sb_options pool='"bats"' parameterPrefix='"/spot-runner/jit/pool-bats"' \
    preRunnerScript="\"printf 'ran\\\\n' >>$SB_OUT/pre-runner-ran\"")
  run_boot "$opts"
  # Boot one: pre-runner script ran, the phase says pooled, the runner never started, no SSM read.
  [[ $(sb_reason) == pooled ]] || { cat "$SB/stdout" >&2; false; }
  grep -qF 'spot-runner: pooled: stopping (pool bats)' "$SB/console"
  [[ $(last_phase) == pooled ]]
  [[ $(wc -l <"$SB_OUT/pre-runner-ran") == 1 ]]
  [[ ! -e $SB_STATE/aws-calls.log ]] || [[ $(grep -c 'ssm get-parameter' "$SB_STATE/aws-calls.log") == 0 ]]
  [[ ! -e $SB_RUNNER_DIR/setpriv.log ]]
  # The resume state is on the disk (not /run): the per-boot hook and the marker.
  [[ -x $hook && -e $SB_ROOT/var/lib/spot-runner/pooled && -s $SB_ROOT/var/lib/spot-runner/bootstrap.sh ]]
  [[ $(stat -c %a "$SB_ROOT/var/lib/spot-runner") == 700 ]]

  # The stop: /run is a tmpfs and goes; the claiming start writes the JIT config; cloud-init's
  # second boot runs only scripts/per-boot (user-data scripts run once per instance).
  mv "$SB_STATE/poweroff" "$SB_STATE/poweroff.1"
  rm -rf "$SB_ROOT/run"
  sb_put_param "/spot-runner/jit/pool-bats/$SB_IID"
  cp "$hook" "$SB/user-data.sh"
  sb_boot
  sb_wait_poweroff 20
  assert_reason job-done
  [[ $(last_phase) == shutting-down ]]
  grep -q 'resumed from pool bats: deadlines count from this boot' "$SB/stdout"
  # The pre-runner script is not run again; the hook is gone. The JIT config was read and its
  # parameter overwritten, never deleted (the name is the claim): consumed: + the config's SHA-256.
  [[ $(wc -l <"$SB_OUT/pre-runner-ran") == 1 ]]
  [[ ! -e $SB_STATE/ssm-deleted.log ]]
  local sum
  sum=$(printf '%s' "$SB_SECRET" | sha256sum)
  [[ $(cat "$SB_STATE/ssm-put.log") == "/spot-runner/jit/pool-bats/$SB_IID consumed:${sum%% *}" ]]
  grep -q -- 'ssm put-parameter .*--type SecureString --overwrite' "$SB_STATE/aws-calls.log"
  [[ -e $SB_OUT/jit-ok ]]
  [[ ! -e $hook && ! -e $SB_ROOT/var/lib/spot-runner/pooled ]]
  # Same watchdogs as a cold boot, set up again on this boot: deadline lines one and two, the IMDS firewall.
  [[ $(grep -c -- '-h +2 spot-runner: max-lifetime reached' "$SB_STATE/shutdown.log") == 2 ]]
  [[ $(grep -c -- '--on-active=60s .*power-off.sh max-lifetime' "$SB_STATE/systemd-run.log") == 2 ]]
  [[ $(grep -c -- '-d 169.254.169.254/32 -j REJECT' "$SB_STATE/iptables.log") == 2 ]]
  grep -q 'Value=pooled' "$SB_STATE/tags.log"
  (($(grep -c 'Value=booting' "$SB_STATE/tags.log") == 2))
}
