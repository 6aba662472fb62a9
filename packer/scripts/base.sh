#!/usr/bin/env bash
# Base OS for every variant: upgraded packages, the tools jobs expect, docker, and the runner user.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "${SPOT_RUNNER_STAGING:-/var/tmp/spot-runner}/lib.sh"

[[ $(machine_arch) == "${SPOT_RUNNER_ARCH:?}" ]] || die "Packer is building ${SPOT_RUNNER_ARCH} but this machine is $(machine_arch)"

# Patch at image time; the weekly scheduled rebuild (build-ami.yml) keeps images current.
# shellcheck disable=SC2086 # APT_LOCK_WAIT is two words
apt-get $APT_LOCK_WAIT update
# shellcheck disable=SC2086
apt-get -y $APT_LOCK_WAIT -o Dpkg::Options::=--force-confold dist-upgrade

apt_install \
  ca-certificates curl gnupg unzip zip xz-utils zstd tar rsync \
  jq git git-lfs openssh-client \
  build-essential pkg-config libssl-dev python3 python3-venv \
  docker.io docker-buildx docker-compose-v2

systemctl enable docker.service containerd.service

# The job user: unprivileged, no password, no sudo.
if ! id runner >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash --user-group runner
fi
passwd --lock runner >/dev/null
# Trade-off, documented in docs/ami.md: docker group membership is root-equivalent on this host.
# Accepted because the machine is single-use and dies with the job; jobs need `docker build/run`.
usermod --append --groups docker runner

if id -nG runner | tr ' ' '\n' | grep -qxE 'sudo|admin|wheel'; then
  die "the runner user must not be in an admin group"
fi
log "base: $(lsb_release -ds), kernel $(uname -r), docker $(docker --version)"
