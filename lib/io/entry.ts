// The edge every script's entry stands on: process streams, the config file, files named on the
// command line, the exit-code rule, the guarded bottom of a script.
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveConfig, type Config } from '../config.ts';
import { exitCodeFor, oneLine, UsageError } from '../errors.ts';

export interface IO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream;
  env: Record<string, string | undefined>;
}

export const processIO = (): IO => ({ stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env });

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const DEFAULT_CONFIG = path.join(REPO_ROOT, 'sneakpeek.config.yaml');

/** --config, else SNEAKPEEK_CONFIG, else the repo's sneakpeek.config.yaml; then env and flags on top. */
export function loadConfig(configPath: string | undefined, env: IO['env'], flags: Record<string, string | undefined> = {}): Config {
  const explicit = configPath ?? (env.SNEAKPEEK_CONFIG || undefined);
  const file = explicit ?? DEFAULT_CONFIG;
  let text: string | null = null;
  if (explicit !== undefined || existsSync(file)) {
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new UsageError(`config ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : oneLine(err)}`);
    }
  }
  return resolveConfig(text, `config ${file}`, env, flags);
}


/** Run `body`; any throw becomes one stderr line and its exit code. -v adds the stack. */
export async function guard(io: IO, prog: string, verbose: boolean, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (err) {
    io.stderr.write(`${prog}: ${oneLine(err)}${err instanceof UsageError ? ` (see ${prog} --help)` : ''}\n`);
    if (verbose && err instanceof Error && err.stack && !(err instanceof UsageError)) io.stderr.write(`${err.stack}\n`);
    return exitCodeFor(err);
  }
}

/** True when the module is the process's entry point (not imported by a test); follows bin symlinks. */
export function isEntry(importMetaUrl: string): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(importMetaUrl));
  } catch {
    return false;
  }
}

/** The guarded bottom of every script: run main, set the exit code; a closed pipe (| head) is not an error. */
export async function runEntry(main: (argv: string[]) => Promise<number>): Promise<void> {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
  process.exitCode = await main(process.argv.slice(2));
}


/** A small text file named on the command line; a missing/unreadable one is a usage error. */
export function readTextFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : oneLine(err);
    throw new UsageError(`${file}: ${why}`);
  }
}

/** Read all of stdin (for `-f -`). */
export async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks);
}

