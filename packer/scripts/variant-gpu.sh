#!/usr/bin/env bash
# gpu: NVIDIA's server driver (Ubuntu's prebuilt, signed modules) and the CUDA toolkit. x86_64 only.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "${SPOT_RUNNER_STAGING:-/var/tmp/spot-runner}/lib.sh"

[[ $(machine_arch) == x86_64 ]] || die "the gpu variant is x86_64 only"
[[ ${NVIDIA_DRIVER_BRANCH:?} =~ ^[0-9]+$ ]] || die "bad NVIDIA_DRIVER_BRANCH '${NVIDIA_DRIVER_BRANCH}'"
[[ ${CUDA_TOOLKIT_PACKAGE:?} =~ ^cuda-toolkit-[0-9]+-[0-9]+$ ]] || die "bad CUDA_TOOLKIT_PACKAGE '${CUDA_TOOLKIT_PACKAGE}'"

readonly CUDA_REPO=https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2404/x86_64
readonly CUDA_KEY_FPR=EB693B3035CD5710E231E123A4B469963BF863CC
readonly CUDA_KEYRING=/usr/share/keyrings/cuda-archive-keyring.gpg

# The build instance has no GPU; ubuntu-drivers installs the named branch anyway.
apt_install ubuntu-drivers-common "linux-headers-$(uname -r)"
ubuntu-drivers install --gpgpu "nvidia:${NVIDIA_DRIVER_BRANCH}-server"
apt_install "nvidia-utils-${NVIDIA_DRIVER_BRANCH}-server"
modinfo -k "$(uname -r)" nvidia >/dev/null || die "no nvidia kernel module for $(uname -r)"

# NVIDIA's repository, trusted only under its pinned key, and only for what we ask for by name.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fetch "${CUDA_REPO}/3bf863cc.pub" "$work/cuda.pub"
fpr=$(gpg --batch --with-colons --show-keys "$work/cuda.pub" | awk -F: '$1 == "fpr" { print $10; exit }')
[[ $fpr == "$CUDA_KEY_FPR" ]] || die "NVIDIA repository key has fingerprint '${fpr}', expected ${CUDA_KEY_FPR}"
gpg --batch --dearmor <"$work/cuda.pub" >"$CUDA_KEYRING"
printf 'deb [signed-by=%s] %s/ /\n' "$CUDA_KEYRING" "$CUDA_REPO" >/etc/apt/sources.list.d/cuda.list
# Keep Ubuntu's driver: NVIDIA's repo ranks below the archive unless a package exists only there.
cat >/etc/apt/preferences.d/cuda-repository-pin <<'PIN'
Package: *
Pin: origin developer.download.nvidia.com
Pin-Priority: 100
PIN
apt-get update
apt_install "$CUDA_TOOLKIT_PACKAGE"

systemctl enable nvidia-persistenced.service 2>/dev/null || log "nvidia-persistenced not packaged as a unit; skipped"
sed -i '1s|^|/usr/local/cuda/bin:|' /opt/actions-runner/.path
cat >/etc/profile.d/spot-runner-cuda.sh <<'SH'
export PATH="/usr/local/cuda/bin:$PATH"
SH
log "gpu: driver ${NVIDIA_DRIVER_BRANCH}-server, $(/usr/local/cuda/bin/nvcc --version | tail -n1)"
