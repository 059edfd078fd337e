// Bad input to -t files / -t merged_dir: one clear line on stderr, nothing on stdout, the
// documented exit code, never a stack trace.
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runTool, TSX, type Run } from '../helpers/cli.ts';
import { spawnSync } from 'node:child_process';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-errors-'));
const file = (name: string, content: string | Buffer) => {
  const p = path.join(dir, name);
  writeFileSync(p, content);
  return p;
};

function container(over: Record<string, unknown> = {}, data: Record<string, unknown> = {}) {
  return {
    Id: 'a'.repeat(64), Name: '/web', State: { Pid: 1 },
    GraphDriver: { Name: 'overlay2', Data: { UpperDir: path.join(dir, 'upper'), LowerDir: path.join(dir, 'lower'), MergedDir: '/m', ...data } },
    ...over,
  };
}

function expectOneLineError(r: Run, code: number, pattern: RegExp): void {
  expect(r.stdout).toBe('');
  expect(r.code).toBe(code);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
}

beforeAll(() => {
  mkdirSync(path.join(dir, 'upper'));
  mkdirSync(path.join(dir, 'lower'));
});
afterAll(() => chmodSync(dir, 0o755));

describe('bad input to -t files', () => {
  const cases: [string, () => string[], number, RegExp][] = [
    ['a missing file', () => ['-f', path.join(dir, 'nope.json')], 2, /nope\.json: no such file/],
    ['a directory', () => ['-f', dir], 2, /is a directory/],
    ['text that is not JSON', () => ['-f', file('text.json', 'hello, world\n')], 2, /not JSON/],
    ['binary data', () => ['-f', file('bin.json', Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 0xff]))], 2, /binary data/],
    ['an empty file', () => ['-f', file('empty.json', '')], 2, /empty/],
    ['an empty array', () => ['-f', file('emptyarr.json', '[]')], 2, /empty list/],
    ['an empty object', () => ['-f', file('obj.json', '{}')], 2, /not a container inspect document/],
    ['several containers and no -n', () => ['-f', file('two.json', JSON.stringify([container(), container({ Id: 'b'.repeat(64), Name: '/db' })]))], 2, /holds 2 containers \(web, db\); choose one with -n/],
    ['-n naming none of them', () => ['-n', 'cache', '-f', file('two2.json', JSON.stringify([container(), container({ Id: 'b'.repeat(64), Name: '/db' })]))], 2, /no container named 'cache'/],
    ['a driver other than overlay2', () => ['-f', file('btrfs.json', JSON.stringify([container({ GraphDriver: { Name: 'btrfs', Data: {} } })]))], 1, /storage driver 'btrfs'.*overlay2\/overlay only/],
    ['no UpperDir', () => ['-f', file('noupper.json', JSON.stringify(container({}, { UpperDir: undefined })))], 1, /no GraphDriver\.Data\.UpperDir/],
    ['an UpperDir that is gone', () => ['-f', file('gone.json', JSON.stringify(container({}, { UpperDir: path.join(dir, 'gone') })))], 1, /UpperDir .*gone: not found/],
    ['a LowerDir that is gone', () => ['-f', file('lowergone.json', JSON.stringify(container({}, { LowerDir: `${path.join(dir, 'lower')}:${path.join(dir, 'layer*gone')}` })))], 1, /LowerDir .*layer\*gone: not found/],
    ['an unknown type', () => ['-t', 'nosuch'], 2, /Invalid values.*type/],
    ['an unknown flag', () => ['--frobnicate'], 2, /Unknown argument/],
    ['a flag without its value', () => ['-f'], 2, /Not enough arguments following: f/],
    ['a bad container name', () => ['-n', '$(reboot)'], 2, /invalid container name/],
    ['an option another type takes', () => ['-t', 'merged_dir', '--json', '-n', 'web'], 2, /--json does not apply to -t merged_dir \(only to -t files, -t fswatch, -t procmon, -t tcptracer\)/],
    ['--stop on files', () => ['--stop', '-n', 'web'], 2, /--stop does not apply to -t files/],
    ['an option given twice', () => ['-n', 'web', '-n', 'db'], 2, /--name given more than once/],
    ['a node address that is an ssh option', () => ['--address=-oProxyCommand=touch x', '-n', 'web'], 2, /invalid node address/],
    ['a node address with shell in it', () => ['-a', 'node1;touch x', '-n', 'web'], 2, /invalid node address/],
  ];

  it.each(cases)('%s', (_label, args, code, pattern) => {
    const a = args();
    const r = runTool('sneakpeek', a.includes('-t') ? a : ['-t', 'files', ...a]);
    expectOneLineError(r, code, pattern);
  });

  it('no -t at all', () => {
    expectOneLineError(runTool('sneakpeek', ['-f', 'x.json']), 2, /missing -t TYPE/);
  });

  it('a config file with an unknown key names the key', () => {
    const cfg = file('bad.yaml', 'ssh:\n  usr: root\n');
    expectOneLineError(runTool('sneakpeek', ['-t', 'files', '-n', 'web'], { env: { SNEAKPEEK_CONFIG: cfg } }), 2, /unknown key 'ssh\.usr'/);
  });

  it('an UpperDir it may not read says so and suggests root', () => {
    const locked = path.join(dir, 'locked');
    mkdirSync(locked, { mode: 0o700 });
    const inspect = file('locked.json', JSON.stringify(container({}, { UpperDir: locked })));
    chmodSync(dir, 0o755);
    // As an unprivileged user, without sudo: what an operator without root sees.
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', TSX, path.join(ROOT, 'scripts/sneakpeek.ts'), '-t', 'files', '-f', inspect], {
      env: { ...process.env, SNEAKPEEK_CONFIG: path.join(ROOT, 'test/fixtures/test.config.yaml'), SNEAKPEEK_SUDO: 'false', HOME: '/tmp' },
      encoding: 'utf8',
    });
    expectOneLineError({ code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, raw: Buffer.from(r.stdout) }, 1, /permission denied \(run as root/);
  });

  it('--help prints USAGE and EXAMPLES on stdout and exits 0', () => {
    const r = runTool('sneakpeek', ['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^USAGE$/m);
    expect(r.stdout).toMatch(/^EXAMPLES$/m);
    expect(r.stderr).toBe('');
  });
});
