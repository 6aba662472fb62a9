import { EC2Client } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';

export interface AwsClients {
  ec2: EC2Client;
  ssm: SSMClient;
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
  return { ec2: new EC2Client(common), ssm: new SSMClient(common) };
}
