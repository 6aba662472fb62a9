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
  return {
    ec2: new EC2Client(common),
    ssm: new SSMClient(common),
    sts: new STSClient(common),
    // A price is a nicety: few attempts, so an unreachable endpoint costs seconds, not minutes.
    pricing: new PricingClient({ ...common, region: pricingRegion(region), maxAttempts: 3 }),
  };
}
