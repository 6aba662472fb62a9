import { EC2Client } from '@aws-sdk/client-ec2';
import { PricingClient } from '@aws-sdk/client-pricing';
import { SSMClient } from '@aws-sdk/client-ssm';
import { STSClient } from '@aws-sdk/client-sts';
import type { AwsClients } from '../../src/aws/clients.js';

export interface Call {
  service: Service;
  command: string;
  input: Record<string, unknown>;
}

type Service = 'ec2' | 'ssm' | 'sts' | 'pricing';

type Handler = (input: Record<string, unknown>, call: number) => unknown;

const READ_ONLY = /^(Describe|Get|List)/;

/**
 * A stand-in for the SDK clients: each command name maps to a handler; every call is recorded.
 * Unknown commands throw, so a test can never pass by accident on an unexpected call.
 */
export class FakeAws {
  readonly calls: Call[] = [];
  private handlers = new Map<string, Handler>();
  private counts = new Map<string, number>();

  /** The handler now in place, so a test world can wrap it rather than replace it. */
  handlerOf(command: string): Handler {
    const h = this.handlers.get(command);
    if (!h) throw new Error(`FakeAws: no handler for ${command}`);
    return h;
  }

  on(command: string, handler: Handler): this {
    this.handlers.set(command, handler);
    return this;
  }

  clients(): AwsClients {
    const send =
      (service: Service) =>
      async (
        cmd: { constructor: { name: string }; input: Record<string, unknown> },
        opts?: { abortSignal?: AbortSignal },
      ) => {
        const command = cmd.constructor.name.replace(/Command$/, '');
        opts?.abortSignal?.throwIfAborted();
        this.calls.push({ service, command, input: cmd.input });
        const n = (this.counts.get(command) ?? 0) + 1;
        this.counts.set(command, n);
        const h = this.handlers.get(command);
        if (!h) throw new Error(`FakeAws: no handler for ${service}:${command}`);
        return h(cmd.input, n);
      };
    // Real clients (the SDK's paginators check instanceof) whose send never leaves the process.
    const creds = { accessKeyId: 'fake', secretAccessKey: 'fake' };
    const ec2 = new EC2Client({ region: 'us-east-1', credentials: creds });
    const ssm = new SSMClient({ region: 'us-east-1', credentials: creds });
    const sts = new STSClient({ region: 'us-east-1', credentials: creds });
    const pricing = new PricingClient({ region: 'us-east-1', credentials: creds });
    Object.assign(ec2, { send: send('ec2') });
    Object.assign(ssm, { send: send('ssm') });
    Object.assign(sts, { send: send('sts') });
    Object.assign(pricing, { send: send('pricing') });
    return { ec2, ssm, sts, pricing };
  }

  mutating(): Call[] {
    return this.calls.filter((c) => !READ_ONLY.test(c.command));
  }

  count(command: string): number {
    return this.calls.filter((c) => c.command === command).length;
  }
}

export function awsError(name: string, message = name, status = 400): Error {
  return Object.assign(new Error(message), {
    name,
    Code: name,
    $fault: 'client',
    $metadata: { httpStatusCode: status },
  });
}
