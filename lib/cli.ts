// What every script's entry shares: streams, config loading, yargs setup, the exit-code rule.
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { resolveConfig, type Config } from './config.ts';
import { exitCodeFor, oneLine, UsageError } from './errors.ts';

export interface IO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream;
  env: Record<string, string | undefined>;
}

export const processIO = (): IO => ({ stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env });

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
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

/**
 * yargs that never exits, never prints its own help, and turns every parse failure into a
 * UsageError; with the options every script has: --config, -v/--verbose, -h/--help.
 */
export function cli(argv: string[], scriptName: string) {
  const y = yargs(argv)
    .scriptName(scriptName)
    .help(false)
    .version(false)
    .strict()
    .exitProcess(false)
    .parserConfiguration({ 'strip-aliased': true });
  return y
    // Repeatable options (array: true, like -e POD) collect every value; any other option given
    // twice is a usage error, and so is `-f` with nothing after it (not an empty file name).
    .middleware((args) => {
      // getOptions() is yargs API that its type definitions leave out.
      const arrays = new Set((y as unknown as { getOptions(): { array: string[] } }).getOptions().array);
      for (const [k, v] of Object.entries(args)) {
        if (k === '_' || k === '$0' || k === '--') continue;
        if (Array.isArray(v) && !arrays.has(k)) throw new UsageError(`--${k} given more than once`);
        if (v === '' && k.length > 1) throw new UsageError(`--${k} needs a value`);
      }
    }, true)
    .fail((msg, err) => {
      throw err instanceof UsageError ? err : new UsageError(msg || oneLine(err));
    })
    .option('config', { type: 'string' })
    .option('verbose', { alias: 'v', type: 'boolean', default: false })
    .option('help', { alias: 'h', type: 'boolean', default: false });
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

/** A `-v` anywhere in argv, seen before parsing so even a parse error can be verbose. */
export const wantsVerbose = (argv: readonly string[]) => argv.includes('-v') || argv.includes('--verbose');

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

