#!/bin/bash
# The VM suite's guest disk: the cached base (build-base.sh) plus the test-only layer: the
# runner stand-in at /opt/actions-runner (user-data/test/fake-runner), a "runner" user, the
# image's .path with a toolchain on it, systemd-networkd, the NoCloud-only cloud-init config
# and the observer (test/vm/guest). Cached by a hash of all of it; prints the image path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
base=$("$here/build-base.sh")
key=$( (
  cd "$repo"
  echo "$base"
  cat test/vm/build-image.sh
  find test/vm/guest user-data/test/fake-runner -type f | sort | xargs sha256sum
  find test/vm/guest user-data/test/fake-runner -type f | sort | xargs stat -c '%n %a'
) | sha256sum | cut -c1-16)
img=$base/image-$key.raw
if [[ -s $img ]]; then
  echo "$img"
  exit 0
fi
echo "VM suite: assembling the guest disk $img" >&2
tmp=$(mktemp -d "$base/assemble.XXXX")
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
mkdir -p "$root"
tar -xf "$base/rootfs.tar" -C "$root"
cp -a "$here/guest/." "$root/"
chroot "$root" useradd --create-home --uid 1001 --user-group --shell /bin/bash runner
install -d -m 0755 "$root/opt/actions-runner"
cp -a "$repo/user-data/test/fake-runner/." "$root/opt/actions-runner/"
# The image's toolchains, as packer/scripts/runner.sh and the variants write them.
printf '%s\n' '/opt/toolchain/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' >"$root/opt/actions-runner/.path"
chroot "$root" chown -R runner:runner /opt/actions-runner
chroot "$root" systemctl enable systemd-networkd.service vmtest-setup.service vmtest-observer.service >/dev/null 2>&1
chroot "$root" systemctl mask serial-getty@ttyS1.service getty@tty1.service >/dev/null 2>&1 || true
truncate -s 3G "$tmp/disk.raw"
mkfs.ext4 -q -F -L root -d "$root" "$tmp/disk.raw"
mv "$tmp/disk.raw" "$img"
echo "$img"
