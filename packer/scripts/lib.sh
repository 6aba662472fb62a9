# shellcheck shell=bash
# Shared helpers. Packer uploads this file to the staging dir first; every provisioner sources it.
set -euo pipefail

log() { printf '[spot-runner-ami] %s\n' "$*"; }
die() { printf '[spot-runner-ami] ERROR: %s\n' "$*" >&2; exit 1; }

# cloud-init and apt-daily may still hold the dpkg lock when provisioning starts: wait for it
# (apt >= 1.9.11 honours DPkg::Lock::Timeout) rather than failing the build.
export APT_LOCK_WAIT='-o DPkg::Lock::Timeout=600'

# apt with retries: mirrors occasionally 5xx during big builds.
apt_install() {
  local attempt
  for attempt in 1 2 3; do
    # shellcheck disable=SC2086 # two words on purpose
    if apt-get install -y --no-install-recommends $APT_LOCK_WAIT -o Dpkg::Options::=--force-confold "$@"; then return 0; fi
    log "apt-get install failed (attempt ${attempt}); refreshing lists"
    sleep $((attempt * 10))
    # shellcheck disable=SC2086
    apt-get $APT_LOCK_WAIT update
  done
  die "apt-get install $* failed three times"
}

# Download to a file over HTTPS only, with retries; never pipes into a shell.
fetch() {
  local url=$1 out=$2
  curl --proto '=https' --tlsv1.2 -fsSL --retry 5 --retry-delay 3 --retry-all-errors -o "$out" "$url"
}

# sha256 check that prints what was expected and what arrived.
verify_sha256() {
  local file=$1 want=$2 got
  got=$(sha256sum "$file" | cut -d' ' -f1)
  [[ $got == "$want" ]] || die "checksum mismatch for $(basename "$file"): expected ${want}, got ${got}"
}

# x86_64 | arm64, as EC2 names them; cross-checked against what Packer says it is building.
machine_arch() {
  local m
  m=$(uname -m)
  case $m in
    x86_64) echo x86_64 ;;
    aarch64) echo arm64 ;;
    *) die "unsupported machine architecture ${m}" ;;
  esac
}
