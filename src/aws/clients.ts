import { EC2Client } from '@aws-sdk/client-ec2';
import { PricingClient } from '@aws-sdk/client-pricing';
import { SSMClient } from '@aws-sdk/client-ssm';
import { STSClient } from '@aws-sdk/client-sts';

export interface AwsClients {
  ec2: EC2Client;
  ssm: SSMClient;
  sts: STSClient;
  pricing: PricingClient;
}

/**
 * The Price List Query API answers only in a few regions (us-east-1, eu-central-1 and ap-south-1
 * in the aws partition; cn-northwest-1 in China); it serves every region's prices from each.
 */
export function pricingRegion(region: string): string {
  if (region.startsWith('cn-')) return 'cn-northwest-1';
  if (region.startsWith('eu-')) return 'eu-central-1';
  if (region.startsWith('ap-')) return 'ap-south-1';
  return 'us-east-1';
}

const EC2_READ = /^(Describe|Get|List)/;
const ec2Reads = new WeakMap<AwsClients, { n: number }>();

/** EC2 read calls (Describe*, Get*) these clients have sent, each once (SDK retries are not recounted); undefined for clients not made by makeAwsClients. */
export function ec2ReadCount(aws: AwsClients): number | undefined {
  return ec2Reads.get(aws)?.n;
}

/**
 * Adaptive retry backs off on throttling across all calls of a client; the request handler puts a
 * timeout on every call. AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_EC2/_SSM) are read by the SDK
 * itself, which is what points us at moto, LocalStack or a VPC endpoint.
 */
export function makeAwsClients(region: string): AwsClients {
  const common = {
    region,
    retryMode: 'adaptive',
    maxAttempts: Number(process.env.SPOT_RUNNER_AWS_MAX_ATTEMPTS) || 10,
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000 },
  } as const;
  const clients: AwsClients = {
    ec2: new EC2Client(common),
    ssm: new SSMClient(common),
    sts: new STSClient(common),
    // A price is a nicety: few attempts, so an unreachable endpoint costs seconds, not minutes.
    pricing: new PricingClient({ ...common, region: pricingRegion(region), maxAttempts: 3 }),
  };
  // Counted for the waiter's EC2 read budget (src/waiter.ts).
  const counter = { n: 0 };
  ec2Reads.set(clients, counter);
  clients.ec2.middlewareStack.add(
    (next, context) => async (args) => {
      if (EC2_READ.test(context.commandName ?? '')) counter.n++;
      return next(args);
    },
    { step: 'initialize', name: 'spotRunnerEc2ReadCount' },
  );
  return clients;
}
