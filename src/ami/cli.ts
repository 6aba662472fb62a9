// Entry point of the AMI tool that build-ami.yml runs as `node dist/ami/index.js <command>`
// (bundled with `ncc build src/ami/cli.ts -o dist/ami`). The logic lives in commands.ts, for tests.
import { makeAwsClients } from '../aws/clients.js';
import { runCli } from './commands.js';

const code = await runCli(process.argv.slice(2), {
  clients: (region) => makeAwsClients(region),
  env: process.env,
  log: (line) => console.log(line),
});
process.exitCode = code;
