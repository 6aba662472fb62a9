# shellcheck shell=bash
# Sourced by the power-off shims (shutdown now, systemctl poweroff, poweroff).
# Records the power-off in $SPOT_RUNNER_TEST_STATE/poweroff, then "cuts the power": SIGKILL to
# every process of the session the harness created with setsid for the bootstrap alone (the
# runner's run.sh puts its helper in a process group of its own, as the real one does).
sandbox_power_off() {
  local state=${SPOT_RUNNER_TEST_STATE:?SPOT_RUNNER_TEST_STATE is not set} stat rest pgid sid f pids=()
  printf '%s %s\n' "$EPOCHREALTIME" "$*" >>"$state/poweroff"
  stat=$(<"/proc/$$/stat")
  rest=${stat##*) }
  read -r _ _ pgid sid _ <<<"$rest"
  # Only inside a setsid session whose leader's group we are in: never a caller's session.
  if [[ $pgid == "$sid" ]]; then
    for f in /proc/[0-9]*/stat; do
      { stat=$(<"$f"); } 2>/dev/null || continue
      rest=${stat##*) }
      read -r _ _ _ s _ <<<"$rest"
      f=${f#/proc/}
      f=${f%/stat}
      # Everyone but this shim: killing itself first would spare the rest of the list.
      [[ $s == "$sid" && $f != "$$" ]] && pids+=("$f")
    done
    kill -KILL "${pids[@]}" 2>/dev/null
    kill -KILL 0
  fi
  exit 0
}
