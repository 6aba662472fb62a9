import { DescribeSpotPriceHistoryCommand, type _InstanceType } from '@aws-sdk/client-ec2';
import type { AwsClients } from './clients.js';
import type { InstanceInfo } from './instances.js';

// On-demand Linux prices (USD/hour, us-east-1) for common runner types. Without the Pricing API
// (an extra permission and a us-east-1-only endpoint) this is the honest best: unknown stays unknown.
const ON_DEMAND_USD: Record<string, number> = {
  'c6i.large': 0.085, 'c6i.xlarge': 0.17, 'c6i.2xlarge': 0.34, 'c6i.4xlarge': 0.68, 'c6i.8xlarge': 1.36,
  'c7i.large': 0.0893, 'c7i.xlarge': 0.1785, 'c7i.2xlarge': 0.357, 'c7i.4xlarge': 0.714, 'c7i.8xlarge': 1.428,
  'c7g.large': 0.0725, 'c7g.xlarge': 0.145, 'c7g.2xlarge': 0.29, 'c7g.4xlarge': 0.58, 'c7g.8xlarge': 1.16,
  'm6i.large': 0.096, 'm6i.xlarge': 0.192, 'm6i.2xlarge': 0.384, 'm7i.large': 0.1008, 'm7i.xlarge': 0.2016,
  't3.micro': 0.0104, 't3.small': 0.0208, 't3.medium': 0.0416, 't3.large': 0.0832,
  'g5.xlarge': 1.006, 'g5.2xlarge': 1.212, 'g6.xlarge': 0.8048,
};

export interface CostLine {
  instanceId: string;
  instanceType: string;
  market: string;
  hours: number;
  pricePerHour?: number;
  cost?: number;
}

/** Spot: the price history's latest price for the type and AZ; on-demand: the table above. */
export async function estimateCost(aws: AwsClients, instances: InstanceInfo[], now: Date): Promise<{ lines: CostLine[]; total?: number }> {
  const lines: CostLine[] = [];
  const spotPrices = new Map<string, number | undefined>();
  for (const i of instances) {
    const key = `${i.instanceType}@${i.availabilityZone}`;
    if (i.market === 'spot' && !spotPrices.has(key)) {
      try {
        const out = await aws.ec2.send(
          new DescribeSpotPriceHistoryCommand({
            InstanceTypes: [i.instanceType as _InstanceType],
            AvailabilityZone: i.availabilityZone || undefined,
            ProductDescriptions: ['Linux/UNIX'],
            StartTime: i.launchTime ?? now,
            EndTime: now,
            MaxResults: 20,
          }),
        );
        const prices = (out.SpotPriceHistory ?? []).map((p) => Number(p.SpotPrice)).filter((n) => Number.isFinite(n) && n > 0);
        spotPrices.set(key, prices.length > 0 ? prices.reduce((a, b) => a + b, 0) / prices.length : undefined);
      } catch {
        spotPrices.set(key, undefined);
      }
    }
  }
  for (const i of instances) {
    const hours = i.launchTime ? Math.max(0, now.getTime() - i.launchTime.getTime()) / 3_600_000 : 0;
    const pricePerHour = i.market === 'spot' ? spotPrices.get(`${i.instanceType}@${i.availabilityZone}`) : ON_DEMAND_USD[i.instanceType];
    lines.push({ instanceId: i.instanceId, instanceType: i.instanceType, market: i.market, hours, pricePerHour, cost: pricePerHour === undefined ? undefined : pricePerHour * hours });
  }
  const known = lines.filter((l) => l.cost !== undefined);
  return { lines, total: known.length === lines.length ? known.reduce((a, l) => a + (l.cost ?? 0), 0) : undefined };
}

/** The latest spot price per type@AZ, for the start summary; best-effort (undefined when unknown). */
export async function currentSpotPrices(aws: AwsClients, pairs: { instanceType: string; availabilityZone: string }[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const keys = [...new Set(pairs.map((p) => `${p.instanceType}@${p.availabilityZone}`))];
  await Promise.all(
    keys.map(async (key) => {
      const [type, az] = key.split('@') as [string, string];
      try {
        const res = await aws.ec2.send(
          new DescribeSpotPriceHistoryCommand({ InstanceTypes: [type as _InstanceType], AvailabilityZone: az || undefined, ProductDescriptions: ['Linux/UNIX'], StartTime: new Date(), MaxResults: 5 }),
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
