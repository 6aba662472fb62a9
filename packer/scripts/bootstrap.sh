#!/usr/bin/env bash
# Ships user-data/ in the image (for reference and for its systemd units) and stamps what was built.
# The live bootstrap still arrives as user-data from the action; this copy is what the image was built with.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "${SPOT_RUNNER_STAGING:-/var/tmp/spot-runner}/lib.sh"

readonly DEST=/opt/spot-runner
src="${SPOT_RUNNER_STAGING:-/var/tmp/spot-runner}/user-data"

install -d -m 0755 "$DEST"
if [[ -d $src ]]; then
  cp -a "$src/." "$DEST/"
fi
# user-data/test/ holds shims (a fake aws, systemctl, poweroff) and a fake runner: never in an image.
rm -rf "$DEST/test"
[[ ! -e $DEST/test ]] || die "test shims found in $DEST/test"
# Root-owned and read-only to the job user: it may read the (public) bootstrap, never change it.
chown -R root:root "$DEST"
chmod -R go-w "$DEST"

# Units are installed but not enabled; the bootstrap starts what it needs, when it needs it.
while IFS= read -r -d '' unit; do
  install -m 0644 "$unit" /etc/systemd/system/
  log "installed unit $(basename "$unit")"
done < <(find "$DEST" -type f \( -name '*.service' -o -name '*.timer' -o -name '*.path' \) -print0)
systemctl daemon-reload

cat >"$DEST/image.env" <<STAMP
SPOT_RUNNER_IMAGE_VARIANT=${SPOT_RUNNER_VARIANT:?}
SPOT_RUNNER_IMAGE_ARCH=${SPOT_RUNNER_ARCH:?}
SPOT_RUNNER_IMAGE_CONTENT_HASH=${SPOT_RUNNER_CONTENT_HASH:?}
SPOT_RUNNER_IMAGE_RUNNER_VERSION=${RUNNER_VERSION:?}
SPOT_RUNNER_IMAGE_BUILT_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
STAMP
chmod 0644 "$DEST/image.env"
