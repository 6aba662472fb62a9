#!/usr/bin/env bash
# Hardening: nothing listens that need not, nothing patches itself mid-job.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "${SPOT_RUNNER_STAGING:-/var/tmp/spot-runner}/lib.sh"

if [[ ${ENABLE_SSH:-false} != true ]]; then
  # Disabled and masked, not stopped: Packer is still connected over SSH for the last steps.
  systemctl disable ssh.service ssh.socket 2>/dev/null || true
  systemctl mask ssh.service ssh.socket
  apt-get purge -y ec2-instance-connect 2>/dev/null || true
  log "sshd disabled (set enable_ssh = true to keep it)"
else
  log "sshd left enabled because enable_ssh = true"
fi

# The periodic apt timers would take the dpkg lock and CPU in the middle of a job, so they stay
# off; images are patched at build time and rebuilt weekly. unattended-upgrades itself is NOT
# masked: a pre-runner script or job may run it, and masking it hid that images went unpatched.
cat >/etc/apt/apt.conf.d/20auto-upgrades <<'CONF'
APT::Periodic::Update-Package-Lists "0";
APT::Periodic::Unattended-Upgrade "0";
CONF
systemctl unmask unattended-upgrades.service 2>/dev/null || true
for unit in apt-daily.timer apt-daily-upgrade.timer motd-news.timer; do
  systemctl disable "$unit" 2>/dev/null || true
  systemctl mask "$unit"
done
# Snaps (amazon-ssm-agent) must not refresh in the middle of a job either.
if command -v snap >/dev/null; then
  snap refresh --hold=forever || log "snapd does not support --hold=forever; snap refresh left as is"
fi

# The job user gets no sudo: fail the build if any rule grants it.
if sudo -l -U runner 2>/dev/null | grep -q 'may run'; then
  die "the runner user has sudo rights"
fi
