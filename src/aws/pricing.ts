import {
  DescribeInstanceTypesCommand,
  paginateDescribeSpotPriceHistory,
  DescribeSpotPriceHistoryCommand,
  type _InstanceType,
} from '@aws-sdk/client-ec2';
import { GetProductsCommand } from '@aws-sdk/client-pricing';
import type { AwsClients } from './clients.js';
import type { InstanceInfo } from './instances.js';

// On-demand Linux prices (USD/hour, us-east-1) for common runner types: the fallback when the
// Price List Query API cannot be reached or does not know the type. The summary says when it was used.
const ON_DEMAND_USD: Record<string, number> = {
  'c6i.large': 0.085,
  'c6i.xlarge': 0.17,
  'c6i.2xlarge': 0.34,
  'c6i.4xlarge': 0.68,
  'c6i.8xlarge': 1.36,
  'c7i.large': 0.08925,
  'c7i.xlarge': 0.1785,
  'c7i.2xlarge': 0.357,
  'c7i.4xlarge': 0.714,
  'c7i.8xlarge': 1.428,
  'c7g.large': 0.0725,
  'c7g.xlarge': 0.145,
  'c7g.2xlarge': 0.29,
  'c7g.4xlarge': 0.58,
  'c7g.8xlarge': 1.16,
  'm6i.large': 0.096,
  'm6i.xlarge': 0.192,
  'm6i.2xlarge': 0.384,
  'm7i.large': 0.1008,
  'm7i.xlarge': 0.2016,
  't3.micro': 0.0104,
  't3.small': 0.0208,
  't3.medium': 0.0416,
  't3.large': 0.0832,
  'g5.xlarge': 1.006,
  'g5.2xlarge': 1.212,
  'g6.xlarge': 0.8048,
};

// gp3 storage, USD per GB-month in us-east-1 (aws.amazon.com/ebs/pricing, 2026-12); AWS bills a
// month as 730 hours. The root volume's baseline IOPS and throughput are free.
const EBS_GP3_USD_PER_GB_MONTH = 0.08;
const HOURS_PER_MONTH = 730;

/**
 * GitHub-hosted larger runners, Linux, USD per minute by vCPU count (docs.github.com, billing
 * reference "Actions runner pricing", rates from 2026-01-01, read 2026-12-01). GitHub rounds
 * each job up to whole minutes.
 */
export const GITHUB_HOSTED_PER_MINUTE = {
  source:
    'https://docs.github.com/en/billing/reference/actions-runner-pricing (rates from 2026-01-01, read 2026-12-01)',
  x86_64: { 2: 0.006, 4: 0.012, 8: 0.022, 16: 0.042, 32: 0.082, 64: 0.162, 96: 0.252 } as Record<number, number>,
  arm64: { 2: 0.005, 4: 0.008, 8: 0.014, 16: 0.026, 32: 0.05, 64: 0.098 } as Record<number, number>,
};

export type PriceSource = 'spot-price-history' | 'price-list' | 'bundled-table' | 'unknown';

export interface CostLine {
  instanceId: string;
  instanceType: string;
  market: string;
  hours: number;
  /** Average over the instance's life (time-weighted for spot). */
  pricePerHour?: number;
  priceSource: PriceSource;
  ebsGiB?: number;
  ebsCost?: number;
  cost?: number;
  /** The same minutes on the GitHub-hosted Linux runner with as many vCPUs, if there is one. */
  githubHosted?: { label: string; cost: number };
}

export interface CostEstimate {
  lines: CostLine[];
  total?: number;
  githubHostedTotal?: number;
  /** Says which prices came from where, for the summary. */
  notes: string[];
}

/**
 * What the instances cost from launch to `end`. DescribeSpotPriceHistory returns price CHANGES
 * (each with the time it took effect, plus the one in force at the start), so spot is the
 * integral of a step function, not an average of samples.
 */
export function timeWeighted(changes: { at: Date; price: number }[], from: Date, to: Date): number | undefined {
  const span = to.getTime() - from.getTime();
  const sorted = [...changes].sort((a, b) => a.at.getTime() - b.at.getTime());
  if (sorted.length === 0) return undefined;
  if (span <= 0) return sorted.filter((c) => c.at <= from).at(-1)?.price ?? sorted[0]?.price;
  let sum = 0;
  let covered = 0;
  for (let k = 0; k < sorted.length; k++) {
    const c = sorted[k] as { at: Date; price: number };
    const next = sorted[k + 1];
    const a = Math.max(c.at.getTime(), from.getTime());
    const b = Math.min(next ? next.at.getTime() : to.getTime(), to.getTime());
    if (b > a) {
      sum += c.price * (b - a);
      covered += b - a;
    }
  }
  // A history that starts after the launch: the first known price stands for the gap.
  const first = sorted[0] as { at: Date; price: number };
  if (covered < span && first.at.getTime() > from.getTime()) sum += first.price * (span - covered);
  return sum / span;
}

async function spotChanges(
  aws: AwsClients,
  type: string,
  az: string,
  from: Date,
  to: Date,
): Promise<{ at: Date; price: number }[]> {
  const out: { at: Date; price: number }[] = [];
  for await (const page of paginateDescribeSpotPriceHistory(
    { client: aws.ec2 },
    {
      InstanceTypes: [type as _InstanceType],
      AvailabilityZone: az || undefined,
      ProductDescriptions: ['Linux/UNIX'],
      StartTime: from,
      EndTime: to,
    },
  )) {
    for (const p of page.SpotPriceHistory ?? []) {
      const price = Number(p.SpotPrice);
      if (p.Timestamp && Number.isFinite(price) && price > 0) out.push({ at: p.Timestamp, price });
    }
  }
  return out;
}

/** On-demand Linux, shared tenancy, no pre-installed software, from the Price List Query API. */
export async function onDemandPrice(aws: AwsClients, type: string, region: string): Promise<number | undefined> {
  const term = (Field: string, Value: string) => ({ Type: 'TERM_MATCH' as const, Field, Value });
  const out = await aws.pricing.send(
    new GetProductsCommand({
      ServiceCode: 'AmazonEC2',
      Filters: [
        term('instanceType', type),
        term('regionCode', region),
        term('operatingSystem', 'Linux'),
        term('tenancy', 'Shared'),
        term('preInstalledSw', 'NA'),
        term('capacitystatus', 'Used'),
      ],
      MaxResults: 10,
    }),
  );
  for (const raw of out.PriceList ?? []) {
    const item = JSON.parse(raw) as {
      terms?: { OnDemand?: Record<string, { priceDimensions?: Record<string, { pricePerUnit?: { USD?: string } }> }> };
    };
    for (const t of Object.values(item.terms?.OnDemand ?? {})) {
      for (const d of Object.values(t.priceDimensions ?? {})) {
        const usd = Number(d.pricePerUnit?.USD);
        if (Number.isFinite(usd) && usd > 0) return usd;
      }
    }
  }
  return undefined;
}

async function vcpusOf(aws: AwsClients, types: string[]): Promise<Map<string, { vcpus: number; arch: string }>> {
  const out = new Map<string, { vcpus: number; arch: string }>();
  if (types.length === 0) return out;
  try {
    const res = await aws.ec2.send(new DescribeInstanceTypesCommand({ InstanceTypes: types as _InstanceType[] }));
    for (const t of res.InstanceTypes ?? []) {
      if (t.InstanceType && t.VCpuInfo?.DefaultVCpus)
        out.set(t.InstanceType, {
          vcpus: t.VCpuInfo.DefaultVCpus,
          arch: t.ProcessorInfo?.SupportedArchitectures?.includes('arm64') ? 'arm64' : 'x86_64',
        });
    }
  } catch {
    // The comparison is a nicety; without it the summary simply omits it.
  }
  return out;
}

export interface CostOptions {
  region: string;
  /** Root volume GiB per instance, when known. */
  volumeGiB?: Map<string, number>;
  /** When each instance stopped costing (terminated); default `now`. */
  endedAt?: Map<string, Date>;
}

export async function estimateCost(
  aws: AwsClients,
  instances: InstanceInfo[],
  now: Date,
  o: CostOptions = { region: 'us-east-1' },
): Promise<CostEstimate> {
  const notes: string[] = [];
  const spot = new Map<string, { at: Date; price: number }[] | undefined>();
  const onDemand = new Map<string, { price?: number; source: PriceSource }>();
  let priceListFailure: string | undefined;
  for (const i of instances) {
    const end = o.endedAt?.get(i.instanceId) ?? now;
    const from = i.launchTime ?? end;
    if (i.market === 'spot') {
      const key = `${i.instanceType}@${i.availabilityZone}@${from.getTime()}`;
      if (!spot.has(key))
        spot.set(key, await spotChanges(aws, i.instanceType, i.availabilityZone, from, end).catch(() => undefined));
    } else if (!onDemand.has(i.instanceType)) {
      let price: number | undefined;
      try {
        price = await onDemandPrice(aws, i.instanceType, o.region);
      } catch (e) {
        priceListFailure = (e as Error).message;
      }
      if (price !== undefined) onDemand.set(i.instanceType, { price, source: 'price-list' });
      else if (ON_DEMAND_USD[i.instanceType] !== undefined)
        onDemand.set(i.instanceType, { price: ON_DEMAND_USD[i.instanceType], source: 'bundled-table' });
      else onDemand.set(i.instanceType, { source: 'unknown' });
    }
  }
  const cores = await vcpusOf(aws, [...new Set(instances.map((i) => i.instanceType))]);
  const lines: CostLine[] = instances.map((i) => {
    const end = o.endedAt?.get(i.instanceId) ?? now;
    const from = i.launchTime ?? end;
    const hours = Math.max(0, end.getTime() - from.getTime()) / 3_600_000;
    let pricePerHour: number | undefined;
    let priceSource: PriceSource = 'unknown';
    if (i.market === 'spot') {
      const changes = spot.get(`${i.instanceType}@${i.availabilityZone}@${from.getTime()}`);
      pricePerHour = changes ? timeWeighted(changes, from, end) : undefined;
      if (pricePerHour !== undefined) priceSource = 'spot-price-history';
    } else {
      const od = onDemand.get(i.instanceType);
      pricePerHour = od?.price;
      priceSource = od?.source ?? 'unknown';
    }
    const ebsGiB = o.volumeGiB?.get(i.instanceId);
    const ebsCost = ebsGiB === undefined ? undefined : (ebsGiB * EBS_GP3_USD_PER_GB_MONTH * hours) / HOURS_PER_MONTH;
    const compute = pricePerHour === undefined ? undefined : pricePerHour * hours;
    const c = cores.get(i.instanceType);
    const rate = c ? GITHUB_HOSTED_PER_MINUTE[c.arch === 'arm64' ? 'arm64' : 'x86_64'][c.vcpus] : undefined;
    const githubHosted =
      c && rate !== undefined
        ? { label: `Linux ${c.vcpus}-core${c.arch === 'arm64' ? ' arm64' : ''}`, cost: Math.ceil(hours * 60) * rate }
        : undefined;
    return {
      instanceId: i.instanceId,
      instanceType: i.instanceType,
      market: i.market,
      hours,
      pricePerHour,
      priceSource,
      ebsGiB,
      ebsCost,
      cost: compute === undefined ? undefined : compute + (ebsCost ?? 0),
      githubHosted,
    };
  });
  const known = lines.filter((l) => l.cost !== undefined);
  const total = known.length === lines.length ? known.reduce((a, l) => a + (l.cost ?? 0), 0) : undefined;
  const gh =
    lines.every((l) => l.githubHosted) && lines.length > 0
      ? lines.reduce((a, l) => a + (l.githubHosted?.cost ?? 0), 0)
      : undefined;
  const table = [...new Set(lines.filter((l) => l.priceSource === 'bundled-table').map((l) => l.instanceType))];
  if (table.length > 0)
    notes.push(
      `on-demand price of ${table.join(', ')} from spot-runner's bundled us-east-1 table, not the AWS Price List${priceListFailure ? ` (${priceListFailure})` : ''}`,
    );
  if (lines.some((l) => l.ebsCost !== undefined))
    notes.push(`EBS at the gp3 rate of $${EBS_GP3_USD_PER_GB_MONTH}/GB-month (us-east-1)`);
  if (gh !== undefined)
    notes.push(`GitHub-hosted comparison: the same minutes, rounded up per job, at ${GITHUB_HOSTED_PER_MINUTE.source}`);
  return { lines, total, githubHostedTotal: gh, notes };
}

/** The latest spot price per type@AZ, for the start summary; best-effort (undefined when unknown). */
export async function currentSpotPrices(
  aws: AwsClients,
  pairs: { instanceType: string; availabilityZone: string }[],
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const keys = [...new Set(pairs.map((p) => `${p.instanceType}@${p.availabilityZone}`))];
  await Promise.all(
    keys.map(async (key) => {
      const [type, az] = key.split('@') as [string, string];
      try {
        const res = await aws.ec2.send(
          new DescribeSpotPriceHistoryCommand({
            InstanceTypes: [type as _InstanceType],
            AvailabilityZone: az || undefined,
            ProductDescriptions: ['Linux/UNIX'],
            StartTime: new Date(),
            MaxResults: 5,
          }),
        );
        const price = res.SpotPriceHistory?.[0]?.SpotPrice;
        if (price) out.set(key, price);
      } catch {
        // The summary shows "—"; a price lookup never fails a start.
      }
    }),
  );
  return out;
}
