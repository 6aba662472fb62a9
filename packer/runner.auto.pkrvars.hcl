# THE ONE PLACE the Actions runner version is pinned. Rewritten by packer/bump-runner.sh
# (and the bump-runner workflow); do not edit by hand without the published checksums.
# Values for v2.330.0, taken from the SHA-256 sums GitHub publishes with the release
# (the <!-- BEGIN SHA linux-… --> markers in its notes); not re-downloaded and re-hashed here.
runner_version       = "2.330.0"
runner_sha256_x86_64 = "af5c33fa94f3cc33b8e97937939136a6b04197e6dadfcfb3b6e33ae1bf41e79a"
runner_sha256_arm64  = "9cb43527912086c7c8fb4119cb06409fcbcbd6f93a2d8507f30b07c495620f5c"
