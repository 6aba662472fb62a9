#!/usr/bin/env bash
# base: nothing beyond what every image has (base.sh, awscli.sh, runner.sh).
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "${SPOT_RUNNER_STAGING:-/var/tmp/spot-runner}/lib.sh"
log "variant base: no extra toolchain"
