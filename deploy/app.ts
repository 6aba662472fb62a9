// The CDK app: synthesizes the stack without the CDK CLI or `cdk bootstrap`, and writes the one
// template users deploy (`npm run synth`). CI re-synthesizes and fails if the committed file differs.
import { App } from 'aws-cdk-lib';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SpotRunnerStack } from './stack.js';

export const TEMPLATE = join(dirname(fileURLToPath(import.meta.url)), 'spot-runner.template.json');
export const STACK_ID = 'SpotRunner';

/** A fresh app with the stack, for the assertion tests and for synth. */
export function buildStack(): SpotRunnerStack {
  const app = new App({ analyticsReporting: false, context: { 'aws:cdk:enable-path-metadata': false } });
  return new SpotRunnerStack(app, STACK_ID);
}

/**
 * CloudFormation takes a template body of at most 51,200 bytes without an S3 bucket, so the
 * committed template is compact JSON (one line, ending in a newline).
 */
export const TEMPLATE_BODY_LIMIT = 51_200;

/** The template as it is committed. */
export function synthTemplate(): string {
  const stack = buildStack();
  const assembly = (stack.node.root as App).synth();
  return `${JSON.stringify(assembly.getStackByName(stack.stackName).template)}\n`;
}

export function writeTemplate(path = TEMPLATE): void {
  writeFileSync(path, synthTemplate());
}
