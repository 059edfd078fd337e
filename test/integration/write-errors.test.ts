// stdout that cannot be written: a full disk (/dev/full: every write is ENOSPC) is one line on
// stderr and exit 1, for every tool and every kind of output; a reader that closes early
// (`| head -1`: EPIPE) is a quiet success. Real child processes, stdout opened on /dev/full or a
// real pipe closed by head.
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shQuote } from '../../lib/quote.ts';
import { ROOT, TEST_CONFIG, TSX } from '../helpers/cli.ts';
import { cleanupContainers, ensureBusyboxImage, exec, runContainer } from '../helpers/docker.ts';
import { pod } from '../helpers/kube.ts';
import { dockerUp, isRoot, missing } from '../helpers/prereq.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-reliability-input-write-'));
const NAME = `sp-reliability-input-write-${process.pid}`;
const bigPods = path.join(dir, 'pods.json');
// 5,000 containers: ~120 KB of lines, more than a pipe holds, so head's exit is seen mid-output.
writeFileSync(bigPods, JSON.stringify({
  kind: 'PodList',
  items: Array.from({ length: 5000 }, (_, i) => pod({ name: `p-${i}`, hostIP: '10.0.0.3', containers: [{ name: 'a', id: i.toString(16).padStart(64, '0') }] })),
}));

interface Ran { code: number; stdout: string; stderr: string }

/** The tool with stdout on `stdoutTo` (a path opened for writing) or piped into `| head -1`. */
function run(tool: string, args: string[], to: { file: string } | { head: true }): Promise<Ran> {
  const cmd = [TSX, path.join(ROOT, 'scripts', `${tool}.ts`), ...args];
  const argv = 'file' in to ? cmd : ['bash', '-c', `${cmd.map(shQuote).join(' ')} | head -1; exit "\${PIPESTATUS[0]}"`];
  const out = 'file' in to ? openSync(to.file, 'w') : 'pipe';
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: ROOT, env: { ...process.env, SNEAKPEEK_CONFIG: TEST_CONFIG }, stdio: ['ignore', out, 'pipe'] });
    if (typeof out === 'number') closeSync(out);
    const so: Buffer[] = [];
    const se: Buffer[] = [];
    child.stdout?.on('data', (c: Buffer) => so.push(c));
    child.stderr!.on('data', (c: Buffer) => se.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout: Buffer.concat(so).toString('utf8'), stderr: Buffer.concat(se).toString('utf8') });
    });
  });
}

const FULL = (tool: string) => `${tool}: cannot write to stdout: no space left on device (ENOSPC)\n`;

afterAll(() => {
  cleanupContainers();
  rmSync(dir, { recursive: true, force: true });
});

describe('stdout on a full disk (/dev/full)', () => {
  it.each([
    ['sneakpeek', ['--help']],
    ['get_all_containers', ['--help']],
    ['get_container_ns', ['--help']],
    ['bpftool_map_container_ns', ['--help']],
    ['get_all_containers', ['--pods-file', bigPods]],
    ['get_all_containers', ['--pods-file', bigPods, '--json']],
    ['sneakpeek', ['-t', 'files', '--pods-file', bigPods, '--dry-run']],
    ['get_container_ns', ['-a', '10.0.0.3', '-n', 'web', '--dry-run']],
    ['bpftool_map_container_ns', ['--dry-run', '--no-start', '4026532398', '/sys/fs/bpf/mnt_ns_x']],
  ])('%s %j: one line, exit 1', async (tool, args) => {
    const r = await run(tool, args, { file: '/dev/full' });
    expect(r.stderr).toBe(FULL(tool));
    expect(r.code).toBe(1);
  });
});

describe('a reader that closes early (| head -1)', () => {
  it('get_all_containers on 5,000 containers: the first line, quiet, exit 0', async () => {
    const r = await run('get_all_containers', ['--pods-file', bigPods], { head: true });
    expect(r.stdout).toBe(`10.0.0.3,${'0'.repeat(12)}\n`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});

describe.skipIf(missing({ root: isRoot, docker: dockerUp }))('sneakpeek -t files on a real container', () => {
  beforeAll(() => {
    runContainer(NAME, ensureBusyboxImage());
    exec(NAME, 'mkdir /tmp/many && cd /tmp/many && i=0; while [ $i -lt 5000 ]; do : > f$i; i=$((i+1)); done');
  });

  it.each([
    [['--chroot']],
    [['--json']],
    [['-0']],
  ])('-t files %j > /dev/full: one line, exit 1', async (extra) => {
    const r = await run('sneakpeek', ['-t', 'files', '-n', NAME, ...extra], { file: '/dev/full' });
    expect(r.stderr).toBe(FULL('sneakpeek'));
    expect(r.code).toBe(1);
  });

  it('-t merged_dir > /dev/full: one line, exit 1', async () => {
    const r = await run('sneakpeek', ['-t', 'merged_dir', '-n', NAME], { file: '/dev/full' });
    expect(r.stderr).toBe(FULL('sneakpeek'));
    expect(r.code).toBe(1);
  });

  it('-t files --chroot | head -1 on 5,000 changes: the first line, quiet, exit 0', async () => {
    const r = await run('sneakpeek', ['-t', 'files', '--chroot', '-n', NAME], { head: true });
    expect(r.stdout).toMatch(/^[ACD] \/\S+\n$/);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});
