#!/usr/bin/env bash
# AWS CLI v2 from AWS, accepted only with a valid signature by the AWS CLI Team key (pinned fingerprint).
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "${SPOT_RUNNER_STAGING:-/var/tmp/spot-runner}/lib.sh"

readonly AWS_CLI_KEY_FPR=FB5DB77FD5C118B80511ADA8A6310ACC4672475C
key_file="${SPOT_RUNNER_STAGING:-/var/tmp/spot-runner}/files/aws-cli-team.asc"

case $(machine_arch) in
  x86_64) zip_arch=x86_64 ;;
  arm64) zip_arch=aarch64 ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GNUPGHOME="$work/gnupg"
install -d -m 0700 "$GNUPGHOME"

# Check the key file's fingerprint before trusting it for anything.
fpr=$(gpg --batch --with-colons --show-keys "$key_file" | awk -F: '$1 == "fpr" { print $10; exit }')
[[ $fpr == "$AWS_CLI_KEY_FPR" ]] || die "aws-cli-team.asc has fingerprint '${fpr}', expected ${AWS_CLI_KEY_FPR}"
gpg --batch --quiet --import "$key_file"

fetch "https://awscli.amazonaws.com/awscli-exe-linux-${zip_arch}.zip" "$work/awscliv2.zip"
fetch "https://awscli.amazonaws.com/awscli-exe-linux-${zip_arch}.zip.sig" "$work/awscliv2.zip.sig"

# gpg's exit status alone is not enough: require a VALIDSIG line naming the pinned key.
status=$(gpg --batch --status-fd 1 --verify "$work/awscliv2.zip.sig" "$work/awscliv2.zip" 2>/dev/null) \
  || die "AWS CLI signature did not verify"
grep -E '^\[GNUPG:\] VALIDSIG ' <<<"$status" | grep -q "$AWS_CLI_KEY_FPR" \
  || die "AWS CLI zip is not signed by ${AWS_CLI_KEY_FPR}"

unzip -q "$work/awscliv2.zip" -d "$work"
"$work/aws/install" --bin-dir /usr/local/bin --install-dir /usr/local/aws-cli --update
log "awscli: $(/usr/local/bin/aws --version)"
