/** A bad input: names the input and says how to fix it. Thrown before anything is created. */
export class InputError extends Error {
  constructor(
    readonly input: string,
    problem: string,
    fix: string,
  ) {
    super(`Input '${input}': ${problem}. Fix: ${fix}`);
    this.name = 'InputError';
  }
}

/** Something went wrong after validation; the message says what was seen. */
export class SpotRunnerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SpotRunnerError';
  }
}

export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

/** AWS SDK v3 and Octokit errors both carry a name/code and an HTTP status somewhere. */
export function errorCode(e: unknown): string {
  const x = e as { name?: string; Code?: string; code?: string } | undefined;
  return x?.Code ?? x?.name ?? x?.code ?? '';
}

export function httpStatus(e: unknown): number | undefined {
  const x = e as { status?: number; $metadata?: { httpStatusCode?: number } } | undefined;
  return x?.status ?? x?.$metadata?.httpStatusCode;
}
