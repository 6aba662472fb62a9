#!/bin/bash
# Builds the VM suite's base guest (Debian trixie, real kernel, systemd and cloud-init) once and
# caches it under $SPOT_RUNNER_VM_CACHE (default ~/.cache/spot-runner-vm), keyed by a hash of
# this recipe. Prints the cache directory holding rootfs.tar, vmlinuz and initrd.img.
# trixie, not bookworm: its awscli (2.23) honours AWS_ENDPOINT_URL; bookworm's 2.9 does not.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
missing=()
for t in mmdebstrap qemu-system-x86_64 qemu-img socat xorriso mkfs.ext4; do
  command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
if ((${#missing[@]})); then
  echo "VM suite: missing ${missing[*]}. Install with:" >&2
  echo "  apt-get install -y qemu-system-x86 qemu-utils mmdebstrap socat xorriso e2fsprogs" >&2
  exit 1
fi
SUITE=trixie
MIRROR=${SPOT_RUNNER_VM_MIRROR:-http://deb.debian.org/debian}
PACKAGES=systemd-sysv,dbus,cloud-init,iptables,curl,util-linux,e2fsprogs,linux-image-amd64,awscli,procps,iproute2,kmod,udev,initramfs-tools,ca-certificates
key=$( (cat "$0"; echo "$SUITE $MIRROR $PACKAGES") | sha256sum | cut -c1-16)
cache=${SPOT_RUNNER_VM_CACHE:-$HOME/.cache/spot-runner-vm}/base-$key
if [[ -s $cache/rootfs.tar && -s $cache/vmlinuz && -s $cache/initrd.img ]]; then
  echo "$cache"
  exit 0
fi
mkdir -p "$cache"
tmp=$(mktemp -d "$cache.XXXX")
trap 'rm -rf "$tmp"' EXIT
echo "VM suite: building the $SUITE guest once (mmdebstrap, a few minutes) into $cache" >&2
mmdebstrap --variant=minbase --include="$PACKAGES" \
  --customize-hook='echo spot-vm >"$1/etc/hostname"' \
  --customize-hook='cp "$1"/boot/vmlinuz-* "'"$tmp"'/vmlinuz"; cp "$1"/boot/initrd.img-* "'"$tmp"'/initrd.img"' \
  --customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/usr/share/doc "$1"/usr/share/man' \
  "$SUITE" "$tmp/rootfs.tar" "$MIRROR" >&2
chmod 0644 "$tmp/vmlinuz" "$tmp/initrd.img"
mv "$tmp/rootfs.tar" "$tmp/vmlinuz" "$tmp/initrd.img" "$cache/"
echo "$cache"
