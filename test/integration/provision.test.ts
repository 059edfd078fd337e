// The README's test command, as written, on the machines it names: root on a fresh Debian 12
// (no sudo yet: provision installs it), and a user who has sudo. .ci/provision is idempotent, so
// on a provisioned machine the root run only checks what is there (well under a second).
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.ts';
import { commandWorks, dockerUp, isRoot, missing } from '../helpers/prereq.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-reliability-input-provision-'));
chmodSync(dir, 0o755); // nobody runs from the PATH made in here
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The provisioning half of the README's Quick start test command (`X && npm test`). */
function readmeProvision(): string {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const quick = readme.slice(readme.indexOf('## Quick start'));
  const line = quick.split('\n').find((l) => l.includes('.ci/provision') && l.includes('npm test'));
  if (!line) throw new Error('no `.ci/provision … && npm test` line in the README Quick start');
  return line.split('&&')[0]!.trim();
}

/** A PATH with every command of the standard one but sudo: a fresh Debian 12 before provision. */
function pathWithoutSudo(): string {
  const bin = path.join(dir, 'no-sudo-bin');
  if (existsSync(bin)) return bin;
  mkdirSync(bin);
  for (const d of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    let names: string[] = [];
    try {
      names = readdirSync(d);
    } catch {
      continue;
    }
    for (const n of names) {
      if (n === 'sudo') continue;
      try {
        symlinkSync(path.join(d, n), path.join(bin, n));
      } catch {
        // the first directory on the standard PATH wins, as it would
      }
    }
  }
  return bin;
}

const sh = (cmd: string, o: { path?: string; asNobody?: boolean } = {}) => {
  const argv = ['bash', '-c', cmd];
  const full = o.asNobody ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', ...argv] : argv;
  return spawnSync(full[0]!, full.slice(1), {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'], // no terminal: sudo cannot ask for a password
    env: { ...process.env, ...(o.path ? { PATH: o.path } : {}) },
    timeout: 120_000,
  });
};

// dockerd up: the machine is provisioned, so the root run below starts nothing new.
describe.skipIf(missing({ root: isRoot, setpriv: () => commandWorks('setpriv', ['--version']), 'a provisioned machine (docker info)': dockerUp }))('the README test command: .ci/provision', () => {
  it('names no sudo: it must run on a fresh machine that has none', () => {
    expect(readmeProvision()).toBe('bash .ci/provision');
  });

  it('root with no sudo on the machine: provision runs, exit 0', () => {
    const noSudo = pathWithoutSudo();
    expect(sh('command -v sudo', { path: noSudo }).status).not.toBe(0);
    const r = sh(readmeProvision(), { path: noSudo });
    expect(r.stderr).not.toMatch(/sudo: (command )?not found/);
    expect(r.stderr).toMatch(/^provision: ready: docker /m);
    expect(r.status).toBe(0);
  });

  it('a user with sudo: provision runs itself again through the real sudo (here it may not: no password, no terminal)', () => {
    const r = sh(readmeProvision(), { asNobody: true });
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe('provision: not root: running again through sudo');
    expect(lines.slice(1).join('\n')).toMatch(/^sudo: /m); // the real sudo answered
    expect(r.stderr).not.toMatch(/apt-get|ready/);
    expect(r.status).not.toBe(0);
  });

  it('neither root nor sudo: one clear line, exit 1', () => {
    const r = sh(readmeProvision(), { path: pathWithoutSudo(), asNobody: true });
    expect(r.stderr).toBe(`provision: must run as root, and sudo is not installed: log in as root (su -) and run: bash ${path.join(ROOT, '.ci/provision')}\n`);
    expect(r.status).toBe(1);
  });
});
