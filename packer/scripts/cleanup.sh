#!/usr/bin/env bash
# Last step: no caches, no logs, no identity from the build instance in the image.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "${SPOT_RUNNER_STAGING:-/var/tmp/spot-runner}/lib.sh"

apt-get -y autoremove --purge
apt-get clean
rm -rf /var/lib/apt/lists/*

# Each instance must make its own machine-id, host keys and cloud-init instance state at first boot.
truncate -s 0 /etc/machine-id
rm -f /var/lib/dbus/machine-id
ln -s /etc/machine-id /var/lib/dbus/machine-id
rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub
cloud-init clean --logs --seed

journalctl --rotate >/dev/null 2>&1 || true
journalctl --vacuum-time=1s >/dev/null 2>&1 || true
find /var/log -type f \( -name '*.gz' -o -name '*.[0-9]' \) -delete
find /var/log -type f -exec truncate -s 0 {} +
rm -f /root/.bash_history /home/*/.bash_history
rm -rf "${SPOT_RUNNER_STAGING:-/var/tmp/spot-runner}"
fstrim --all >/dev/null 2>&1 || true
sync
log "cleanup done"
