import { checkImageId, type AmiArch } from './names.js';

/** The parts of Packer's manifest post-processor output that publishing needs. */
interface ManifestBuild {
  name?: string;
  builder_type?: string;
  build_time?: number;
  artifact_id?: string;
  packer_run_uuid?: string;
  custom_data?: Record<string, string>;
}

export interface BuiltImage {
  region: string;
  imageId: string;
}

export interface ManifestEntry {
  images: BuiltImage[];
  /** Unix seconds when Packer finished this build. */
  buildTime?: number;
  contentHash?: string;
  runnerVersion?: string;
}

/**
 * The AMIs the latest Packer run produced for variant/arch, one per region ("us-east-1:ami-…,eu-west-1:ami-…").
 * The manifest appends across runs, so only last_run_uuid's builds count.
 */
export function readManifest(json: string, want: { variant: string; arch: AmiArch }): ManifestEntry {
  const m = JSON.parse(json) as { builds?: ManifestBuild[]; last_run_uuid?: string };
  const builds = (m.builds ?? []).filter((b) => !m.last_run_uuid || b.packer_run_uuid === m.last_run_uuid);
  const match = builds.filter(
    (b) => (b.custom_data?.arch ?? b.name) === want.arch && (b.custom_data?.variant ?? want.variant) === want.variant,
  );
  const build = match[match.length - 1];
  if (!build?.artifact_id) throw new Error(`the manifest has no ${want.variant}/${want.arch} build in its last run`);
  const images = build.artifact_id.split(',').map((pair) => {
    const [region, imageId] = pair.split(':');
    if (!region || !imageId) throw new Error(`unexpected artifact id '${pair}' in the manifest`);
    return { region, imageId: checkImageId(imageId) };
  });
  return {
    images,
    buildTime: build.build_time,
    contentHash: build.custom_data?.content_hash,
    runnerVersion: build.custom_data?.runner_version,
  };
}
