#!/bin/bash
# Runner stand-in, entry point: behaves like actions/runner 2.330's run.sh (written from its
# documented behaviour, not copied): loop over run-helper.sh while it asks for a restart (2);
# otherwise exit 0, or, with RUNNER_MANUALLY_TRAP_SIG set, forward SIGTERM/SIGINT to the
# helper's process group as SIGINT and exit with the helper's code.
DIR=$(cd -P "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -z ${RUNNER_MANUALLY_TRAP_SIG:-} ]]; then
  while :; do
    cp -f "$DIR/run-helper.sh.template" "$DIR/run-helper.sh"
    "$DIR/run-helper.sh" "$@"
    rc=$?
    [[ $rc == 2 ]] || { echo "Exiting runner..."; exit 0; }
    echo "Restarting runner..."
  done
fi
set -m
trap 'kill -INT -$PID' INT TERM
while :; do
  cp -f "$DIR/run-helper.sh.template" "$DIR/run-helper.sh"
  "$DIR/run-helper.sh" "$@" &
  PID=$!
  wait $PID
  rc=$?
  if [[ $rc == 2 ]]; then
    echo "Restarting runner..."
    continue
  fi
  echo "Exiting runner..."
  trap - INT TERM
  wait $PID
  exit $rc
done
