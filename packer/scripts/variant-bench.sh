#!/usr/bin/env bash
# bench: perf tools matched to the boot kernel, and the quietest CPU settings the instance allows.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "${SPOT_RUNNER_STAGING:-/var/tmp/spot-runner}/lib.sh"

# linux-tools-aws follows the aws kernel flavour; the uname -r package matches the kernel booted now.
apt_install linux-tools-common linux-tools-aws "linux-tools-$(uname -r)" numactl sysstat hyperfine

# Let the unprivileged job user profile its own processes; and free the PMU counter the NMI watchdog holds.
cat >/etc/sysctl.d/60-spot-runner-bench.conf <<'CONF'
kernel.perf_event_paranoid = 1
kernel.nmi_watchdog = 0
CONF

# Most EC2 types expose no cpufreq control (the hypervisor owns it); where they do, pin "performance".
cat >/etc/systemd/system/spot-runner-cpu-performance.service <<'UNIT'
[Unit]
Description=spot-runner bench: CPU frequency governor = performance, where the instance allows it
After=systemd-modules-load.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'if [ -d /sys/devices/system/cpu/cpu0/cpufreq ]; then cpupower frequency-set -g performance; else echo "no cpufreq control on this instance type"; fi'
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
UNIT
systemctl enable spot-runner-cpu-performance.service
log "bench: $(perf --version 2>&1 || true)"
