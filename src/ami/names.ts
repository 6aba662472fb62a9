// Names shared by the Packer template (packer/runner.pkr.hcl), build-ami.yml and the action's
// `image: ssm:/spot-runner/ami/<variant>/{arch}` lookup. Change them together or not at all.

export type AmiArch = 'x86_64' | 'arm64';
export const AMI_ARCHES: readonly AmiArch[] = ['x86_64', 'arm64'];

/** Where published AMI ids live: <root>/<variant>/<arch> and <root>/<variant>/<arch>/previous. */
export const AMI_PARAMETER_ROOT = '/spot-runner/ami';

/** Tags Packer puts on every AMI and snapshot it builds (see local.image_tags in the template). */
export const AMI_TAGS = {
  managed: 'spot-runner:managed',
  variant: 'spot-runner:variant',
  arch: 'spot-runner:arch',
  contentHash: 'spot-runner:content-hash',
  runnerVersion: 'spot-runner:runner-version',
  /** Set by rollback on the image it replaced, so CI does not quietly re-publish it. */
  rolledBack: 'spot-runner:rolled-back',
} as const;

// Variants reach parameter names and tag filters: keep them to a small safe alphabet.
const VARIANT_RE = /^[a-z0-9][a-z0-9-]{0,31}$/;
const HASH_RE = /^[0-9a-f]{64}$/;
const AMI_ID_RE = /^ami-[0-9a-f]{8,17}$/;

export function checkVariant(variant: string): string {
  if (!VARIANT_RE.test(variant)) throw new Error(`variant '${variant}' must match ${VARIANT_RE.source}`);
  return variant;
}

export function checkArch(arch: string): AmiArch {
  if (!(AMI_ARCHES as readonly string[]).includes(arch))
    throw new Error(`arch '${arch}' must be one of ${AMI_ARCHES.join(', ')}`);
  return arch as AmiArch;
}

export function checkContentHash(hash: string): string {
  if (!HASH_RE.test(hash))
    throw new Error(`content hash '${hash}' must be 64 lowercase hex characters (packer/hash.sh)`);
  return hash;
}

export function checkImageId(id: string): string {
  if (!AMI_ID_RE.test(id)) throw new Error(`'${id}' is not an AMI id`);
  return id;
}

export function currentParameter(variant: string, arch: AmiArch, root = AMI_PARAMETER_ROOT): string {
  return `${root}/${checkVariant(variant)}/${checkArch(arch)}`;
}

export function previousParameter(variant: string, arch: AmiArch, root = AMI_PARAMETER_ROOT): string {
  return `${currentParameter(variant, arch, root)}/previous`;
}
