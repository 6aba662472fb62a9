# The spot-runner AMI: one template, one shared source, built once per architecture.
# CI builds one cell at a time:  packer build -only=amazon-ebs.<arch> -var variant=<v> -var content_hash=<h> packer/
# Everything a runner needs is baked in here, so boot installs nothing (every boot second is job wait time).

locals {
  build_stamp  = formatdate("YYYYMMDD-hhmmss", timestamp())
  deprecate_at = timeadd(timestamp(), "${var.deprecate_after_days * 24}h")

  # GPU drivers + CUDA and the Kani toolchains need room; the others stay small so they snapshot fast.
  default_volume_size = { "base" = 30, "rust-kani" = 60, "bench" = 30, "gpu" = 80 }
  volume_size         = var.volume_size_gb > 0 ? var.volume_size_gb : local.default_volume_size[var.variant]

  # Tag schema shared by the AMI and its snapshots; src/ami/ finds, publishes and housekeeps by it.
  image_tags = {
    "spot-runner:managed"        = "true"
    "spot-runner:variant"        = var.variant
    "spot-runner:content-hash"   = var.content_hash
    "spot-runner:runner-version" = var.runner_version
    "spot-runner:built-at"       = timestamp()
  }
  # The build instance is not a runner: a different tag keeps reap mode's hands off it.
  build_tags = {
    "spot-runner:ami-build" = "true"
    "spot-runner:variant"   = var.variant
  }

  # The same schemas per architecture, for the build block's sources to pick theirs from.
  arch_image_tags = { for arch in ["x86_64", "arm64"] : arch => merge(local.image_tags, { "Name" = "spot-runner-${var.variant}-${arch}", "spot-runner:arch" = arch }) }
  arch_build_tags = { for arch in ["x86_64", "arm64"] : arch => merge(local.build_tags, { "Name" = "packer-spot-runner-${var.variant}-${arch}" }) }
}

# Everything both architectures share. The build block below names one source per architecture
# (amazon-ebs.x86_64, amazon-ebs.arm64) and adds only what differs. Packer merges the two bodies and
# refuses a setting defined in both, so a per-architecture setting must not appear here.
source "amazon-ebs" "runner" {
  region        = var.region
  ami_regions   = var.ami_regions
  encrypt_boot  = true
  kms_key_id    = var.kms_key_id != "" ? var.kms_key_id : null
  imds_support  = "v2.0"
  deprecate_at  = local.deprecate_at
  ena_support   = true
  sriov_support = true

  # Spot for the build instance: a fleet request over several types (spot_instance_types, per
  # architecture), at up to the on-demand price.
  spot_price = "auto"
  # A subnet (or a filter for one) is required: without, the plugin picks AZs that may not offer
  # the build types. file() of a path that cannot exist is how HCL fails with a message.
  subnet_id = var.subnet_id != "" ? var.subnet_id : (length(var.subnet_filter) > 0 ? null : file("ERROR: set subnet_id or subnet_filter for the build instance"))
  dynamic "subnet_filter" {
    for_each = length(var.subnet_filter) > 0 ? [var.subnet_filter] : []
    content {
      filters   = subnet_filter.value
      most_free = true
    }
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  launch_block_device_mappings {
    device_name           = "/dev/sda1"
    volume_size           = local.volume_size
    volume_type           = "gp3"
    encrypted             = true
    delete_on_termination = true
  }

  communicator                              = "ssh"
  ssh_username                              = "ubuntu"
  ssh_timeout                               = "15m"
  temporary_key_pair_type                   = "ed25519"
  temporary_security_group_source_public_ip = true
  ssh_clear_authorized_keys                 = true

  # Large snapshots (gpu) take longer than the plugin's default wait.
  aws_polling {
    delay_seconds = 15
    max_attempts  = 240
  }
}

build {
  # One build per architecture: `name` makes it amazon-ebs.<arch> (for -only) and source.name below.
  source "amazon-ebs.runner" {
    name                = "x86_64"
    ami_name            = "spot-runner-${var.variant}-x86_64-${local.build_stamp}"
    spot_instance_types = var.x86_64_instance_types
    source_ami_filter {
      filters = {
        name                = "ubuntu/images/hvm-ssd-gp3/ubuntu-${var.ubuntu_series}-amd64-server-*"
        architecture        = "x86_64"
        root-device-type    = "ebs"
        virtualization-type = "hvm"
      }
      owners      = ["099720109477"] # Canonical: only its Ubuntu images are trusted as a base
      most_recent = true
    }
    tags            = merge(local.arch_image_tags["x86_64"], { "spot-runner:source-ami" = "{{ .SourceAMI }}" })
    snapshot_tags   = local.arch_image_tags["x86_64"]
    run_tags        = local.arch_build_tags["x86_64"]
    run_volume_tags = local.arch_build_tags["x86_64"]
    spot_tags       = local.arch_build_tags["x86_64"]
  }

  source "amazon-ebs.runner" {
    name = "arm64"
    # NVIDIA driver + CUDA images are x86_64 only. Packer evaluates this only when the arm64 build is
    # selected, so gpu + arm64 stops here with this message instead of failing halfway through a build.
    ami_name            = var.variant == "gpu" ? file("REFUSED: the gpu variant is built for x86_64 only; use -only=amazon-ebs.x86_64") : "spot-runner-${var.variant}-arm64-${local.build_stamp}"
    spot_instance_types = var.arm64_instance_types
    source_ami_filter {
      filters = {
        name                = "ubuntu/images/hvm-ssd-gp3/ubuntu-${var.ubuntu_series}-arm64-server-*"
        architecture        = "arm64"
        root-device-type    = "ebs"
        virtualization-type = "hvm"
      }
      owners      = ["099720109477"] # Canonical: only its Ubuntu images are trusted as a base
      most_recent = true
    }
    tags            = merge(local.arch_image_tags["arm64"], { "spot-runner:source-ami" = "{{ .SourceAMI }}" })
    snapshot_tags   = local.arch_image_tags["arm64"]
    run_tags        = local.arch_build_tags["arm64"]
    run_volume_tags = local.arch_build_tags["arm64"]
    spot_tags       = local.arch_build_tags["arm64"]
  }

  # cloud-init still owns apt on first boot; exit 2 means "done, with recoverable warnings".
  # Staging lives in /var/tmp because /tmp is wiped by the reboot below.
  provisioner "shell" {
    inline = [
      "cloud-init status --wait >/dev/null || [ $? -eq 2 ]",
      "mkdir -p /var/tmp/spot-runner/files /var/tmp/spot-runner/user-data",
    ]
  }

  provisioner "file" {
    source      = "${path.root}/scripts/lib.sh"
    destination = "/var/tmp/spot-runner/lib.sh"
  }

  provisioner "file" {
    source      = "${path.root}/files/"
    destination = "/var/tmp/spot-runner/files"
  }

  provisioner "file" {
    source      = "${path.root}/../user-data/"
    destination = "/var/tmp/spot-runner/user-data"
  }

  provisioner "shell" {
    execute_command  = "sudo env {{ .Vars }} bash '{{ .Path }}'"
    environment_vars = ["DEBIAN_FRONTEND=noninteractive", "SPOT_RUNNER_ARCH=${source.name}", "SPOT_RUNNER_STAGING=/var/tmp/spot-runner"]
    scripts          = ["${path.root}/scripts/base.sh"]
  }

  # Reboot into the upgraded kernel, so DKMS/modules (gpu) and linux-tools (bench) match the kernel the image boots.
  provisioner "shell" {
    inline            = ["sudo systemctl reboot"]
    expect_disconnect = true
  }

  provisioner "shell" {
    pause_before    = "20s"
    execute_command = "sudo env {{ .Vars }} bash '{{ .Path }}'"
    environment_vars = [
      "DEBIAN_FRONTEND=noninteractive",
      "SPOT_RUNNER_ARCH=${source.name}",
      "SPOT_RUNNER_VARIANT=${var.variant}",
      "SPOT_RUNNER_CONTENT_HASH=${var.content_hash}",
      "SPOT_RUNNER_STAGING=/var/tmp/spot-runner",
      "RUNNER_VERSION=${var.runner_version}",
      "RUNNER_SHA256=${source.name == "x86_64" ? var.runner_sha256_x86_64 : var.runner_sha256_arm64}",
      "RUST_TOOLCHAIN=${var.rust_toolchain}",
      "KANI_VERSION=${var.kani_version}",
      "NVIDIA_DRIVER_BRANCH=${var.nvidia_driver_branch}",
      "CUDA_TOOLKIT_PACKAGE=${var.cuda_toolkit_package}",
      "ENABLE_SSH=${var.enable_ssh}",
    ]
    scripts = [
      "${path.root}/scripts/awscli.sh",
      "${path.root}/scripts/runner.sh",
      "${path.root}/scripts/bootstrap.sh",
      "${path.root}/scripts/variant-${var.variant}.sh",
      "${path.root}/scripts/harden.sh",
      "${path.root}/scripts/cleanup.sh",
    ]
  }

  post-processor "manifest" {
    output     = "${path.root}/manifest.json"
    strip_path = true
    custom_data = {
      variant        = var.variant
      arch           = source.name
      content_hash   = var.content_hash
      runner_version = var.runner_version
    }
  }
}
