#!/usr/bin/env bash
# rust-kani: rustup + Rust for the runner user, the Kani verifier, and its caches warmed by a real proof.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "${SPOT_RUNNER_STAGING:-/var/tmp/spot-runner}/lib.sh"

readonly RUNNER_HOME=/home/runner
[[ ${KANI_VERSION:?} =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "bad KANI_VERSION '${KANI_VERSION}'"

case $(machine_arch) in
  x86_64) triple=x86_64-unknown-linux-gnu ;;
  arm64) triple=aarch64-unknown-linux-gnu ;;
esac

work=$(mktemp -d)
chmod 0755 "$work"
trap 'rm -rf "$work"' EXIT

# rustup-init with the sha256 the Rust project publishes next to it.
fetch "https://static.rust-lang.org/rustup/dist/${triple}/rustup-init" "$work/rustup-init"
fetch "https://static.rust-lang.org/rustup/dist/${triple}/rustup-init.sha256" "$work/rustup-init.sha256"
verify_sha256 "$work/rustup-init" "$(cut -d' ' -f1 "$work/rustup-init.sha256")"
chmod 0755 "$work/rustup-init"

as_runner() { runuser -u runner -- env HOME="$RUNNER_HOME" PATH="$RUNNER_HOME/.cargo/bin:/usr/local/bin:/usr/bin:/bin" "$@"; }

as_runner "$work/rustup-init" -y --no-modify-path --profile minimal \
  --default-toolchain "${RUST_TOOLCHAIN:-stable}" --component clippy,rustfmt
as_runner cargo install --locked kani-verifier --version "$KANI_VERSION"
# Downloads Kani's pinned nightly toolchain and CBMC into ~/.kani: the slow part every job would repeat.
as_runner cargo kani setup

# Warm the remaining caches with one real proof: crate build, Kani std build, solver run.
# In the runner's home: the project must be writable by the user that builds it.
warm="$RUNNER_HOME/.cache/spot-runner-kani-warm"
as_runner mkdir -p "$RUNNER_HOME/.cache"
as_runner cargo new --lib --vcs none --quiet "$warm"
cat >"$warm/src/lib.rs" <<'RS'
pub fn add(a: u8, b: u8) -> Option<u8> {
    a.checked_add(b)
}

#[cfg(kani)]
#[kani::proof]
fn add_never_panics() {
    let (a, b): (u8, u8) = (kani::any(), kani::any());
    let _ = add(a, b);
}
RS
chown runner:runner "$warm/src/lib.rs"
(cd "$warm" && as_runner cargo kani)
rm -rf "$warm" # its target/ is per-project; the shared caches stay in ~/.cargo and ~/.kani

# Jobs find cargo through the runner's .path and login shells through profile.d.
sed -i "1s|^|${RUNNER_HOME}/.cargo/bin:|" /opt/actions-runner/.path
cat >/etc/profile.d/spot-runner-cargo.sh <<'SH'
if [ "$(id -un)" = runner ]; then export PATH="/home/runner/.cargo/bin:$PATH"; fi
SH
log "rust-kani: $(as_runner rustc --version), $(as_runner cargo kani --version)"
