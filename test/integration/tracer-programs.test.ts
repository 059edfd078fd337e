// The shipped bpftrace programs run by hand on this kernel, filtered on this test's own mount
// namespace (no container, no unit): what execsnoop.bt prints for execs with and without
// arguments, read back by lib/events.ts. The bpftrace process is started here and stopped by
// its pid. (test/integration/events.test.ts runs both programs against containers.)
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExecAssembler, type ProcmonEvent } from '../../lib/events.ts';
import { ROOT } from '../helpers/cli.ts';
import { commandWorks, isRoot, missing } from '../helpers/prereq.ts';

const skip = missing({
  root: isRoot,
  'bpftrace (apt-get install bpftrace)': () => existsSync('/usr/bin/bpftrace'),
  perl: () => commandWorks('perl', ['-e', '1']),
});

const tmp = mkdtempSync(path.join(os.tmpdir(), 'sp-btprog-'));
// A name only this file execs: /bin/true under another name.
const marker = path.join(tmp, `sp-btprog-${process.pid}`);
let bt: ChildProcess | undefined;
let out = '';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor(re: RegExp, ms = 60_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!re.test(out) && Date.now() < end && bt?.exitCode === null) await sleep(200);
  return re.test(out);
}

beforeAll(() => {
  if (skip) return;
  symlinkSync('/bin/true', marker);
  const ino = execFileSync('stat', ['-Lc', '%i', '/proc/self/ns/mnt'], { encoding: 'utf8' }).trim();
  bt = spawn('/usr/bin/bpftrace', [path.join(ROOT, 'tracers/execsnoop.bt'), ino], { stdio: ['ignore', 'pipe', 'pipe'] });
  bt.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  bt.stderr!.on('data', (c: Buffer) => (out += c.toString('utf8')));
});

afterAll(async () => {
  if (bt?.pid && bt.exitCode === null) {
    bt.kill('SIGINT');
    for (let i = 0; i < 50 && bt.exitCode === null; i++) await sleep(100);
    if (bt.exitCode === null) bt.kill('SIGKILL');
  }
  rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(skip)('tracers/execsnoop.bt', () => {
  it('prints an exec with arguments, and one with none at all (argc 0), each once', async () => {
    expect(await waitFor(/^Tracing exec in mount namespace \d+\.\.\. Ctrl-C to end\.$/m)).toBe(true);
    execFileSync(marker, ['one', 'two']);
    // execve(marker, {NULL}, env): argv empty.
    execFileSync('perl', ['-e', 'exec {$ARGV[0]} ()', marker]);
    const events = (): ProcmonEvent[] => {
      const asm = new ExecAssembler();
      return out.split('\n').flatMap((l) => asm.push(l)).filter((e) => e.filename === marker);
    };
    const end = Date.now() + 20_000;
    while (events().length < 2 && Date.now() < end) await sleep(200);
    await sleep(500);
    // FILENAME is the marker on exactly those two execs (perl's own exec names it as an argument).
    expect(events().map((e) => [e.ret, e.argc, e.args, e.truncated])).toEqual([
      [0, 3, [marker, 'one', 'two'], undefined],
      [0, 0, [], undefined],
    ]);
    // A host file: on an overlay only when the test itself runs in a container.
    const onOverlay = execFileSync('stat', ['-f', '-c', '%T', tmp], { encoding: 'utf8' }).trim() === 'overlayfs';
    expect(events().map((e) => e.layer)).toEqual(onOverlay ? ['upper', 'upper'] : ['other', 'other']);
  });
});
