#!/usr/bin/env bash
# Bumps the pinned Actions runner in packer/runner.auto.pkrvars.hcl.
#
#   packer/bump-runner.sh [--verify] [VERSION]      VERSION defaults to the latest release
#
# The SHA-256 values come from the release itself: GitHub publishes one per package in the release
# notes between `<!-- BEGIN SHA linux-x64 -->` and `<!-- END SHA linux-x64 -->` markers (and the
# same for linux-arm64). --verify also downloads both tarballs and re-hashes them.
# GITHUB_TOKEN, when set, is sent to api.github.com only (higher rate limit).
# Tests (and air-gapped use) can pass the release JSON in RUNNER_RELEASE_JSON (a file) and the pin
# file in RUNNER_PIN_FILE.
# Prints `changed=true|false` and `version=X.Y.Z`; when GITHUB_OUTPUT is set, writes them there too.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pin=${RUNNER_PIN_FILE:-"${here}/runner.auto.pkrvars.hcl"}
api=${GITHUB_API_URL:-https://api.github.com}
verify=false
version=''

for arg in "$@"; do
  case $arg in
    --verify) verify=true ;;
    -h | --help) sed -n '2,10p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) version=${arg#v} ;;
  esac
done

gh_api() {
  local auth=()
  if [[ -n ${GITHUB_TOKEN:-} ]]; then auth=(-H "Authorization: Bearer ${GITHUB_TOKEN}"); fi
  curl --proto '=https' -fsSL --retry 3 -H 'Accept: application/vnd.github+json' "${auth[@]}" "${api}$1"
}

if [[ -n ${RUNNER_RELEASE_JSON:-} ]]; then
  release=$(cat "$RUNNER_RELEASE_JSON")
elif [[ -z $version ]]; then
  release=$(gh_api /repos/actions/runner/releases/latest)
else
  release=$(gh_api "/repos/actions/runner/releases/tags/v${version}")
fi
version=$(jq -r '.tag_name' <<<"$release")
version=${version#v}
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "bump-runner: unexpected tag '${version}'" >&2; exit 1; }
body=$(jq -r '.body' <<<"$release")

# Only the text between the markers counts: the notes contain other 64-hex strings.
published_sha() {
  local platform=$1 sha
  sha=$(grep -oE "<!-- BEGIN SHA ${platform} -->[0-9a-f]{64}<!-- END SHA ${platform} -->" <<<"$body" \
    | sed -E 's/<!--[^>]*-->//g' | head -n1)
  [[ $sha =~ ^[0-9a-f]{64}$ ]] || { echo "bump-runner: no published SHA-256 for ${platform} in v${version}" >&2; exit 1; }
  printf '%s' "$sha"
}
sha_x64=$(published_sha linux-x64)
sha_arm64=$(published_sha linux-arm64)

if [[ $verify == true ]]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  for pair in "x64:${sha_x64}" "arm64:${sha_arm64}"; do
    pkg=${pair%%:*}
    want=${pair#*:}
    file="actions-runner-linux-${pkg}-${version}.tar.gz"
    curl --proto '=https' -fsSL --retry 3 -o "${work}/${file}" \
      "https://github.com/actions/runner/releases/download/v${version}/${file}"
    got=$(sha256sum "${work}/${file}" | cut -d' ' -f1)
    [[ $got == "$want" ]] || { echo "bump-runner: ${file} hashes to ${got}, release says ${want}" >&2; exit 1; }
  done
fi

new=$(cat <<HCL
# THE ONE PLACE the Actions runner version is pinned. Rewritten by packer/bump-runner.sh
# (and the bump-runner workflow); do not edit by hand without the published checksums.
# Values for v${version}, taken from the SHA-256 sums GitHub publishes with the release
# (the <!-- BEGIN SHA linux-… --> markers in its notes)$([[ $verify == true ]] && printf '; re-hashed after download' || printf '; not re-downloaded and re-hashed here').
runner_version       = "${version}"
runner_sha256_x86_64 = "${sha_x64}"
runner_sha256_arm64  = "${sha_arm64}"
HCL
)

changed=false
if [[ ! -f $pin ]] || ! grep -q "runner_version       = \"${version}\"" "$pin" \
  || ! grep -q "$sha_x64" "$pin" || ! grep -q "$sha_arm64" "$pin"; then
  printf '%s\n' "$new" >"$pin"
  changed=true
fi
printf 'changed=%s\nversion=%s\n' "$changed" "$version"
if [[ -n ${GITHUB_OUTPUT:-} ]]; then printf 'changed=%s\nversion=%s\n' "$changed" "$version" >>"$GITHUB_OUTPUT"; fi
