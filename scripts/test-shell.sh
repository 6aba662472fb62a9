#!/bin/bash
# npm run test:shell: shellcheck on every shell script we own, then the bats suite, which runs
# the real bootstrap rendered by the real renderer. Missing tools fail; they are never skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
command -v bats >/dev/null 2>&1 || missing+=(bats)
if ((${#missing[@]} > 0)); then
  echo "test:shell: ${missing[*]} not found. Install with: apt-get install -y shellcheck bats" >&2
  exit 1
fi

# Shell files: *.sh, *.bash, *.bats, and extension-less scripts with a bash/sh shebang.
files=()
while IFS= read -r -d '' f; do
  case $f in
    *.sh | *.bash | *.bats) files+=("$f") ;;
    *) if head -n 1 "$f" | grep -qE '^#!.*\b(ba)?sh\b'; then files+=("$f"); fi ;;
  esac
done < <(find user-data -type f ! -name '*.mjs' ! -name '*.py' ! -name '*.md' -print0)
files+=(scripts/test-shell.sh scripts/bench-bootstrap.sh)
# The lab's instance-side scripts (the simulator's aws shim and fake runner).
files+=(test/lab/run.sh test/lab/shims/aws)
if [[ -d packer/scripts ]]; then
  while IFS= read -r -d '' f; do files+=("$f"); done < <(find packer/scripts -type f -name '*.sh' -print0)
fi
echo "shellcheck: ${#files[@]} files"
shellcheck -x "${files[@]}"

# The generated template must match the script it embeds.
node scripts/embed-user-data.mjs --check

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
SPOT_RUNNER_RENDER_DIR=$tmp/renderer
export SPOT_RUNNER_RENDER_DIR
node user-data/test/build-renderer.mjs "$SPOT_RUNNER_RENDER_DIR"
bats user-data/test
