variable "variant" {
  type        = string
  description = "Toolchain set baked into the image: base, rust-kani, bench or gpu (gpu is x86_64 only)."
  default     = "base"
  validation {
    condition     = contains(["base", "rust-kani", "bench", "gpu"], var.variant)
    error_message = "The variant must be one of: base, rust-kani, bench, gpu."
  }
}

variable "content_hash" {
  type        = string
  description = "sha256 of packer/ and user-data/ (packer/hash.sh). Tagged on the AMI so CI can skip unchanged builds."
  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.content_hash))
    error_message = "The content_hash must be 64 lowercase hex characters; run packer/hash.sh."
  }
}

variable "region" {
  type        = string
  description = "Region the build instance runs in and the AMI is registered in."
  default     = "us-east-1"
}

variable "ami_regions" {
  type        = list(string)
  description = "Extra regions the finished AMI is copied to (each copy is encrypted with that region's default EBS key)."
  default     = []
}

variable "kms_key_id" {
  type        = string
  description = "KMS key for the encrypted AMI in var.region. Empty = the account's default aws/ebs key."
  default     = ""
}

variable "subnet_id" {
  type        = string
  description = "Subnet for the build instance. Set this or subnet_filter: with neither, the plugin picks any AZ of the default VPC, and some do not offer the build instance types."
  default     = ""
}

variable "subnet_filter" {
  type        = map(string)
  description = "Filters choosing the build subnet instead of subnet_id, e.g. { \"tag:spot-runner-build\" = \"true\" }; the one with the most free addresses wins."
  default     = {}
}

variable "x86_64_instance_types" {
  type        = list(string)
  description = "Spot candidates for the x86_64 build instance, most preferred first."
  default     = ["c7i.large", "c6i.large", "m7i.large", "m6i.large"]
}

variable "arm64_instance_types" {
  type        = list(string)
  description = "Spot candidates for the arm64 build instance (Graviton), most preferred first."
  default     = ["c7g.large", "c6g.large", "m7g.large", "m6g.large"]
}

variable "volume_size_gb" {
  type        = number
  description = "Root volume size. 0 = per-variant default (see local.volume_size)."
  default     = 0
}

variable "deprecate_after_days" {
  type        = number
  description = "Days until EC2 marks the AMI deprecated (it stays launchable by its owner)."
  default     = 90
}

variable "enable_ssh" {
  type        = bool
  description = "Leave sshd enabled in the image. Off by default: runners are reached through GitHub, never SSH."
  default     = false
}

variable "ubuntu_series" {
  type        = string
  description = "Ubuntu LTS codename and version in Canonical's AMI names."
  default     = "noble-24.04"
}

# Pinned in runner.auto.pkrvars.hcl (auto-loaded); declared here without defaults so a missing pin fails.
variable "runner_version" {
  type        = string
  description = "GitHub Actions runner version (>= 2.327.1 for node24 actions)."
  validation {
    # 2.327.1 is the first release that runs node24 actions.
    condition = can(regex("^2\\.[0-9]+\\.[0-9]+$", var.runner_version)) && try(
      tonumber(split(".", var.runner_version)[1]) > 327 ||
      (tonumber(split(".", var.runner_version)[1]) == 327 && tonumber(split(".", var.runner_version)[2]) >= 1),
      false
    )
    error_message = "The runner_version must be 2.327.1 or later."
  }
}

variable "runner_sha256_x86_64" {
  type        = string
  description = "SHA-256 of actions-runner-linux-x64-<version>.tar.gz, from the release's published checksums."
  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.runner_sha256_x86_64))
    error_message = "The runner_sha256_x86_64 must be 64 lowercase hex characters."
  }
}

variable "runner_sha256_arm64" {
  type        = string
  description = "SHA-256 of actions-runner-linux-arm64-<version>.tar.gz, from the release's published checksums."
  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.runner_sha256_arm64))
    error_message = "The runner_sha256_arm64 must be 64 lowercase hex characters."
  }
}

variable "rust_toolchain" {
  type        = string
  description = "rust-kani: the default rustup toolchain."
  default     = "stable"
}

variable "kani_version" {
  type        = string
  description = "rust-kani: the kani-verifier crate version (cargo install --locked)."
  default     = "0.68.0"
}

variable "nvidia_driver_branch" {
  type        = string
  description = "gpu: Ubuntu's NVIDIA server driver branch (package nvidia-driver-<branch>-server)."
  default     = "570"
}

variable "cuda_toolkit_package" {
  type        = string
  description = "gpu: the CUDA toolkit package from NVIDIA's ubuntu2404 repository."
  default     = "cuda-toolkit-12-8"
}
