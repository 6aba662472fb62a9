#!/usr/bin/env bash
# The GitHub Actions runner at the pinned version, verified by SHA-256, owned by the runner user.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "${SPOT_RUNNER_STAGING:-/var/tmp/spot-runner}/lib.sh"

readonly RUNNER_DIR=/opt/actions-runner
arch=$(machine_arch)
[[ $arch == "${SPOT_RUNNER_ARCH:?}" ]] || die "Packer is building ${SPOT_RUNNER_ARCH} but this machine is ${arch}"
[[ ${RUNNER_VERSION:?} =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "bad RUNNER_VERSION '${RUNNER_VERSION}'"
[[ ${RUNNER_SHA256:?} =~ ^[0-9a-f]{64}$ ]] || die "RUNNER_SHA256 must be 64 lowercase hex characters"

case $arch in
  x86_64) pkg_arch=x64 ;;
  arm64) pkg_arch=arm64 ;;
esac
tarball="actions-runner-linux-${pkg_arch}-${RUNNER_VERSION}.tar.gz"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fetch "https://github.com/actions/runner/releases/download/v${RUNNER_VERSION}/${tarball}" "$work/${tarball}"
verify_sha256 "$work/${tarball}" "$RUNNER_SHA256"

rm -rf "$RUNNER_DIR"
install -d -m 0755 "$RUNNER_DIR"
tar -xzf "$work/${tarball}" -C "$RUNNER_DIR"
# The runner's own dependency list (libicu, libssl, ...) for this Ubuntu release.
"$RUNNER_DIR/bin/installdependencies.sh"
install -d -m 0755 "$RUNNER_DIR/_work"
# Jobs' PATH: the runner reads .path at start. Variants prepend their toolchains to it.
printf '%s\n' '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/snap/bin' >"$RUNNER_DIR/.path"
chown -R runner:runner "$RUNNER_DIR"

got=$(runuser -u runner -- "$RUNNER_DIR/bin/Runner.Listener" --version | tr -d '[:space:]')
[[ $got == "$RUNNER_VERSION" ]] || die "installed runner reports '${got}', expected ${RUNNER_VERSION}"
log "runner ${RUNNER_VERSION} (${pkg_arch}) installed in ${RUNNER_DIR}"
