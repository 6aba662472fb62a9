#!/usr/bin/env bash
# Prints the content hash of everything an image is built from: packer/ and user-data/.
# Deterministic: a sorted list of repo-relative paths, each with the sha256 of its bytes, hashed again.
# Paths are part of the hash, so a rename is a change. Build outputs (manifest, cache) and test-only
# files (user-data/test/) are left out.
# Usage: packer/hash.sh [repo-root]   (default: the directory above this script)
set -euo pipefail

root=${1:-"$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"}
cd "$root"

for dir in packer user-data; do
  [[ -d $dir ]] || { echo "hash.sh: ${root}/${dir} is missing" >&2; exit 1; }
done

# user-data/test/ is the bats sandbox and the VM suite's runner stand-in: never in an image.
find packer user-data -type f \
  ! -path 'packer/packer_cache/*' ! -path 'user-data/test/*' ! -name 'manifest*.json' ! -name 'crash.log' -print0 \
  | LC_ALL=C sort -z \
  | xargs -0 --no-run-if-empty sha256sum -- \
  | sha256sum \
  | cut -d' ' -f1
