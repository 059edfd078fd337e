// Files and stdin named on the command line are bounded: a regular file (or '-' where the
// option takes stdin) of at most 1 MiB (config) or 256 MiB (pods file, inspect JSON). What is
// not — /dev/zero, a FIFO, a directory, an unreadable or oversize file, endless stdin — is one
// line and exit 2, quickly: never a hang, never memory growing until the machine gives out.
import { spawn } from 'node:child_process';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { shQuote } from '../../lib/quote.ts';
import { ROOT, TEST_CONFIG, TSX, type Run } from '../helpers/cli.ts';
import { commandWorks, isRoot, missing } from '../helpers/prereq.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-reliability-input-limits-'));
chmodSync(dir, 0o755); // the unreadable-file runs are as nobody: they must reach the files
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TIMEOUT_MS = 15_000; // a FIFO that blocks, or /dev/zero read for ever, fails here instead

/** The tool as a child process; stdin from `stdin` (a file opened here) or a shell pipeline. */
function run(tool: string, args: string[], o: { stdinFile?: string; pipeFrom?: string; asNobody?: boolean } = {}): Promise<Run & { ms: number }> {
  const script = path.join(ROOT, 'scripts', `${tool}.ts`);
  let argv = [TSX, script, ...args];
  if (o.pipeFrom !== undefined) argv = ['sh', '-c', `${o.pipeFrom} | ${argv.map(shQuote).join(' ')}`];
  if (o.asNobody) argv = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', ...argv];
  const stdinFd = o.stdinFile === undefined ? 'ignore' : openSync(o.stdinFile, 'r');
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: ROOT,
      env: { ...process.env, SNEAKPEEK_CONFIG: TEST_CONFIG, HOME: '/tmp' },
      stdio: [stdinFd, 'pipe', 'pipe'],
      detached: true, // its own process group: the timeout ends the whole pipeline
    });
    if (typeof stdinFd === 'number') closeSync(stdinFd);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    child.stderr!.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      const raw = Buffer.concat(out);
      resolve({ code: code ?? -1, stdout: raw.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), raw, ms: Date.now() - t0 });
    });
  });
}

const fifo = path.join(dir, 'fifo');
const aDir = path.join(dir, 'a-directory');
const locked = path.join(dir, 'locked.json');
const bigDoc = path.join(dir, 'big.json'); // sparse: 256 MiB + 1 byte, costs no disk
const bigConfig = path.join(dir, 'big.yaml');
const skipFifo = missing({ mkfifo: () => commandWorks('mkfifo', ['--version']) });
if (!skipFifo) {
  commandWorks('mkfifo', [fifo]);
  mkdirSync(aDir);
  writeFileSync(locked, '{"kind":"PodList","items":[]}');
  chmodSync(locked, 0o000);
  writeFileSync(bigDoc, '');
  truncateSync(bigDoc, (256 << 20) + 1);
  writeFileSync(bigConfig, `# ${'x'.repeat(1 << 20)}\n`);
}

// Each option that names a file, in each tool that has it.
const OPTIONS: [string, (f: string) => string[], string, 'config' | 'document'][] = [
  ['get_all_containers', (f) => ['--config', f], 'config', 'config'],
  ['get_all_containers', (f) => ['--pods-file', f], '--pods-file', 'document'],
  ['sneakpeek', (f) => ['-t', 'files', '-f', f], '-f', 'document'],
  ['sneakpeek', (f) => ['-t', 'files', '--pods-file', f], '--pods-file', 'document'],
  ['get_container_ns', (f) => ['-n', 'web', '--config', f], 'config', 'config'],
];
const CASES = OPTIONS.flatMap(([tool, args, what, limit]) => [
  [tool, what, '/dev/zero', () => args('/dev/zero'), 'not a regular file (a character device)', false],
  [tool, what, 'a FIFO', () => args(fifo), 'not a regular file (a FIFO)', false],
  [tool, what, 'a directory', () => args(aDir), 'is a directory', false],
  [tool, what, 'an oversize file', () => args(limit === 'config' ? bigConfig : bigDoc), `larger than ${limit === 'config' ? 1 : 256} MiB (the most sneakpeek reads)`, false],
  [tool, what, 'an unreadable file (as nobody)', () => args(locked), 'permission denied', true],
] as const);

describe.skipIf(skipFifo || missing({ root: isRoot, setpriv: () => commandWorks('setpriv', ['--version']) }))('files named on the command line', () => {
  it.each(CASES)('%s %s %s → one line, exit 2', async (tool, what, _kind, args, msg, asNobody) => {
    const a = args();
    const r = await run(tool, a, { asNobody });
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`${tool}: ${what} ${a[a.length - 1]}: ${msg} (see ${tool} --help)\n`);
    expect(r.code).toBe(2);
  });

  it.each([
    ['get_all_containers', ['--pods-file', '-'], '--pods-file - (stdin)'],
    ['sneakpeek', ['-t', 'files', '-f', '-'], '-f - (stdin)'],
  ])('%s %j: endless stdin (a pipe from /dev/zero) stops at 256 MiB, exit 2', async (tool, args, what) => {
    const r = await run(tool, args, { pipeFrom: 'cat /dev/zero' });
    expect(r.stderr).toBe(`${tool}: ${what}: larger than 256 MiB (the most sneakpeek reads) (see ${tool} --help)\n`);
    expect(r.code).toBe(2);
  });

  it.each([
    ['/dev/zero on stdin', '/dev/zero'],
    ['an oversize regular file on stdin (refused before reading)', bigDoc],
  ])('--pods-file -: %s, exit 2', async (_l, file) => {
    const r = await run('get_all_containers', ['--pods-file', '-'], { stdinFile: file });
    expect(r.stderr).toBe('get_all_containers: --pods-file - (stdin): larger than 256 MiB (the most sneakpeek reads) (see get_all_containers --help)\n');
    expect(r.code).toBe(2);
  });

  it('stdin under the limit is read as before', async () => {
    const r = await run('get_all_containers', ['--pods-file', '-'], { pipeFrom: `echo '{"kind":"PodList","items":[]}'` });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});
