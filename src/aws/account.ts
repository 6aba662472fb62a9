import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';

/**
 * The AWS account the credentials belong to (STS GetCallerIdentity needs no permission). Start
 * and reap fold it with the region into the runners' home label, so a reaper only ever touches
 * runners started from its own account and region. AWS_ENDPOINT_URL is read by the SDK.
 */
export async function callerAccount(region: string, signal?: AbortSignal): Promise<string> {
  const sts = new STSClient({ region, maxAttempts: Number(process.env.SPOT_RUNNER_AWS_MAX_ATTEMPTS) || 10 });
  try {
    const r = await sts.send(new GetCallerIdentityCommand({}), { abortSignal: signal });
    if (!r.Account) throw new Error('STS GetCallerIdentity returned no account');
    return r.Account;
  } finally {
    sts.destroy();
  }
}
