// Typed failures: the entry point maps them to exit codes (2 usage/config, 1 operation).

/** Bad flags, arguments or configuration: exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The operation could not be done (daemon, node, file system): exit 1. */
export class OpError extends Error {
  override name = 'OpError';
}

const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

export function exitCodeFor(err: unknown): number {
  return err instanceof UsageError ? EXIT_USAGE : EXIT_FAILED;
}

/** One line, no stack: what a user reads on stderr. */
export function oneLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.replace(/\s*\n\s*/g, ' ').trim();
}
