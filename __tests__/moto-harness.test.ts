import { describe, expect, it } from '@jest/globals';
import { startMoto } from '../test/lab/moto.js';
import { EC2Client, DescribeRegionsCommand } from '@aws-sdk/client-ec2';

describe('moto harness', () => {
  it('starts moto and the real SDK talks to it', async () => {
    const moto = await startMoto();
    try {
      const ec2 = new EC2Client({
        region: 'us-east-1',
        endpoint: moto.endpoint,
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      });
      const out = await ec2.send(new DescribeRegionsCommand({}));
      expect(out.Regions?.some((r) => r.RegionName === 'us-east-1')).toBe(true);
    } finally {
      await moto.stop();
    }
  });
});
