# shellcheck shell=bash
# Sourced by the power-off shims (shutdown now, systemctl poweroff, poweroff).
# Records the power-off in $SPOT_RUNNER_TEST_STATE/poweroff, then "cuts the power": SIGKILL to
# the whole process group, which the harness created with setsid for the bootstrap alone.
sandbox_power_off() {
  local state=${SPOT_RUNNER_TEST_STATE:?SPOT_RUNNER_TEST_STATE is not set} stat rest pgid sid
  printf '%s %s\n' "$EPOCHREALTIME" "$*" >>"$state/poweroff"
  stat=$(<"/proc/$$/stat")
  rest=${stat##*) }
  read -r _ _ pgid sid _ <<<"$rest"
  # Only inside a setsid session (pgid == sid): never kill the group of whoever called us.
  if [[ $pgid == "$sid" ]]; then
    kill -KILL 0
  fi
  exit 0
}
