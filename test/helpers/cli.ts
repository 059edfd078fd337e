// Run a sneakpeek script for real: tsx in a child process, as a user would.
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const TSX = path.join(ROOT, 'node_modules/.bin/tsx');
export const TEST_CONFIG = path.join(ROOT, 'test/fixtures/test.config.yaml');

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  raw: Buffer;
}

export interface RunOpts {
  input?: string | Buffer;
  env?: Record<string, string>;
  cwd?: string;
  timeoutMs?: number;
}

function envFor(opts: RunOpts): NodeJS.ProcessEnv {
  return { ...process.env, SNEAKPEEK_CONFIG: TEST_CONFIG, ...opts.env };
}

/** Run scripts/<tool>.ts with args; stdout as text (latin1-safe copy in `raw`). */
export function runTool(tool: string, args: string[], opts: RunOpts = {}): Run {
  const r = spawnSync(TSX, [path.join(ROOT, 'scripts', `${tool}.ts`), ...args], {
    input: opts.input,
    env: envFor(opts),
    cwd: opts.cwd ?? ROOT,
    maxBuffer: 512 << 20,
    timeout: opts.timeoutMs ?? 120_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8'), raw: r.stdout };
}

/** Same, without blocking the event loop (for tests that serve something in-process, e.g. a fake API). */
export function runToolAsync(tool: string, args: string[], opts: RunOpts = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(TSX, [path.join(ROOT, 'scripts', `${tool}.ts`), ...args], { env: envFor(opts), cwd: opts.cwd ?? ROOT });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const raw = Buffer.concat(out);
      resolve({ code: code ?? -1, stdout: raw.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), raw });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Lines of output sorted bytewise (like LC_ALL=C sort). */
export function sortedLines(text: string): string[] {
  return text.split('\n').filter(Boolean).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}
