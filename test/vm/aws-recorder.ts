// Between the guests' aws CLI and moto: forwards every call and records each CreateTags (the
// tag history moto does not keep), so a test sees every phase an instance wrote, in order.
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TagWrite {
  resource: string;
  key: string;
  value: string;
  at: number;
  status: number;
}

export interface AwsRecorder {
  port: number;
  tags: TagWrite[];
  close(): Promise<void>;
}

export async function startAwsRecorder(target: string): Promise<AwsRecorder> {
  const t = new URL(target);
  const tags: TagWrite[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const headers = { ...req.headers, host: t.host, 'content-length': String(body.length) };
      const up = request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers }, (r) => {
        const out: Buffer[] = [];
        r.on('data', (c: Buffer) => out.push(c));
        r.on('end', () => {
          const form = new URLSearchParams(body.toString('utf8'));
          if (form.get('Action') === 'CreateTags') {
            for (let i = 1; form.has(`Tag.${i}.Key`); i++) {
              tags.push({
                resource: form.get('ResourceId.1') ?? '',
                key: form.get(`Tag.${i}.Key`) ?? '',
                value: form.get(`Tag.${i}.Value`) ?? '',
                at: Date.now(),
                status: r.statusCode ?? 0,
              });
            }
          }
          res.writeHead(r.statusCode ?? 502, r.headers);
          res.end(Buffer.concat(out));
        });
      });
      up.on('error', (e) => {
        res.writeHead(502);
        res.end(String(e));
      });
      up.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    tags,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
