// The edge every script's entry stands on: process streams, the config file, files named on the
// command line, the exit-code rule, the guarded bottom of a script.
import { closeSync, constants, existsSync, fstatSync, openSync, readSync, realpathSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveConfig, type Config } from '../config.ts';
import { exitCodeFor, oneLine, UsageError } from '../errors.ts';
import { interrupt, interruptedBy, signalExitCode, stopAll, undoBeforeLeaving } from './interrupt.ts';

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
  const text = explicit !== undefined || existsSync(file) ? readInputFile(file, INPUT_LIMITS.config, `config ${file}`).toString('utf8') : null;
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

/** What a failed write says in one line: `no space left on device (ENOSPC)`. */
export function writeError(err: NodeJS.ErrnoException): string {
  const why = err.message.replace(/^[A-Z0-9]+: /, '').replace(/, (write|writev)$/, '');
  return err.code && !why.includes(err.code) ? `${why} (${err.code})` : why;
}

/**
 * The guarded bottom of every script: run main, set the exit code. A reader that closes early
 * (`| head -1`: EPIPE) is not an error; any other failed write to stdout (a full disk, EIO)
 * is one line on stderr and exit 1, never a stack trace.
 */
export async function runEntry(main: (argv: string[]) => Promise<number>): Promise<void> {
  const prog = path.basename(process.argv[1] ?? 'sneakpeek').replace(/\.[cm]?[jt]s$/, '');
  // Leaving early: the nodes' work is no longer wanted; end it (their scripts clean up after
  // themselves) and undo what must be (the kubectl transport's pods), then exit.
  let leaving = false;
  const leave = (code: number) => {
    if (leaving) return;
    leaving = true;
    stopAll();
    // Nothing more to say: what the stopped nodes report from here is only that they were stopped.
    process.stderr.write = (() => true) as typeof process.stderr.write;
    void undoBeforeLeaving().finally(() => process.exit(code));
  };
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') return leave(Number(process.exitCode ?? 0));
    if (!leaving) process.stderr.write(`${prog}: cannot write to stdout: ${writeError(err)}\n`);
    leave(1);
  });
  // stderr that fails too (2>/dev/full) has nowhere to say so: the exit code says it.
  process.stderr.on('error', () => leave(1));
  // Ctrl-C, SIGTERM, a closed terminal: every node's work is ended, then the exit code says which.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => interrupt(sig));
  const code = await main(process.argv.slice(2));
  const sig = interruptedBy();
  process.exitCode = sig ? signalExitCode(sig) : code;
}


/**
 * The most sneakpeek reads from a file or stdin named on the command line. A config is a few
 * KiB. A pod is 2–20 KiB of JSON (managedFields make the most of it), so 256 MiB is over 10,000
 * pods even at 20 KiB; and V8 cannot hold a string of more than 512 MiB anyway.
 */
export const INPUT_LIMITS = {
  config: 1 << 20,
  /** --pods-file and -f (inspect JSON). */
  document: 256 << 20,
} as const;

const mib = (n: number) => (n % (1 << 20) ? `${n} bytes` : `${n / (1 << 20)} MiB`);

function notRegular(st: Stats): string {
  if (st.isDirectory()) return 'is a directory';
  const what = st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() ? 'a character device' : st.isBlockDevice() ? 'a block device' : st.isSocket() ? 'a socket' : 'not a file';
  return `not a regular file (${what})`;
}

function readError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e.code) {
    case 'ENOENT': return 'no such file';
    case 'EACCES': case 'EPERM': return 'permission denied';
    case 'EISDIR': return 'is a directory';
    case 'ENOTDIR': return 'a component of the path is not a directory';
    case 'ELOOP': return 'too many levels of symbolic links';
    default: return e.code ? `${e.code}: ${e.syscall ?? 'read'} failed` : oneLine(err);
  }
}

/**
 * A file named on the command line (`what` names it in errors, e.g. "--pods-file pods.json"):
 * a regular file — never a directory, FIFO or device, which could block or never end — of at
 * most `limit` bytes. Anything else is a usage error: one line, exit 2.
 */
export function readInputFile(file: string, limit: number, what: string): Buffer {
  let fd: number | undefined;
  try {
    // stat first: a FIFO or device is never opened (opening a FIFO waits for a writer).
    const st = statSync(file);
    if (!st.isFile()) throw new UsageError(`${what}: ${notRegular(st)}`);
    // O_NONBLOCK: should a FIFO be swapped in after the stat, open does not wait for it.
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
    const fst = fstatSync(fd);
    if (!fst.isFile()) throw new UsageError(`${what}: ${notRegular(fst)}`);
    if (fst.size > limit) throw new UsageError(`${what}: larger than ${mib(limit)} (the most sneakpeek reads)`);
    // Read to the limit and one byte more: a file that grows past it while read is refused too.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const want = Math.min(Math.max(fst.size - total, 1 << 16), limit + 1 - total);
      const chunk = Buffer.allocUnsafe(want);
      const got = readSync(fd, chunk, 0, want, null);
      if (got === 0) break;
      total += got;
      if (total > limit) throw new UsageError(`${what}: larger than ${mib(limit)} (the most sneakpeek reads)`);
      chunks.push(chunk.subarray(0, got));
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`${what}: ${readError(err)}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * All of stdin (for `-f -`, `--pods-file -`), at most `limit` bytes: past it, reading stops and
 * it is a usage error. A regular file on stdin is measured before anything is read.
 */
export async function readAll(stream: NodeJS.ReadableStream, limit: number, what = 'stdin'): Promise<Buffer> {
  const tooLarge = () => new UsageError(`${what}: larger than ${mib(limit)} (the most sneakpeek reads)`);
  if (stream === process.stdin) {
    try {
      const st = fstatSync(0);
      if (st.isDirectory()) throw new UsageError(`${what}: is a directory`);
      if (st.isFile() && st.size > limit) throw tooLarge();
    } catch (err) {
      if (err instanceof UsageError) throw err;
    }
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const c of stream) {
      const b = typeof c === 'string' ? Buffer.from(c) : (c as Buffer);
      total += b.length;
      if (total > limit) {
        (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
        throw tooLarge();
      }
      chunks.push(b);
    }
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`${what}: ${readError(err)}`);
  }
  return Buffer.concat(chunks);
}
