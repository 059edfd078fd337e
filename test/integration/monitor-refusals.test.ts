// -t procmon / -t tcptracer and bpftool_map_container_ns refusing before anything is pinned: a
// tracer binary or systemctl missing on the node fails every container with the reason, and no
// map, env file or template stays behind; INODEs yargs would read as numbers (1e3, 0x10) are
// refused. A real container and the real bpftool on this kernel's bpffs; no systemd is needed
// (nothing may get that far). Maps this file could pin are mnt_ns_<its container's id>.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTool, type Run } from '../helpers/cli.ts';
import { cleanupContainers, docker, ensureBusyboxImage, runContainer } from '../helpers/docker.ts';
import { commandWorks, dockerUp, isRoot, missing } from '../helpers/prereq.ts';

const BPFFS = '/sys/fs/bpf';
const skip = missing({
  root: isRoot,
  docker: dockerUp,
  'bpftool (apt-get install bpftool)': () => commandWorks('bpftool', ['version']),
  'bpffs on /sys/fs/bpf': () => spawnSync('stat', ['-f', '-c', '%T', BPFFS], { encoding: 'utf8' }).stdout.trim() === 'bpf_fs',
});

const C = `sp-monrefuse-${process.pid}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'sp-monrefuse-'));
let id: string;
let ino: string;

const mapOf = (i: string) => path.join(BPFFS, `mnt_ns_${i}`);
const inodeOf = (c: string) => execFileSync('stat', ['-Lc', '%i', `/proc/${docker('inspect', '-f', '{{.State.Pid}}', c)}/ns/mnt`], { encoding: 'utf8' }).trim();

/** A config with every directory in this file's temp dir, plus `extra` YAML. */
function config(name: string, extra: string): string {
  const file = path.join(tmp, `${name}.yaml`);
  const dir = path.join(tmp, name);
  writeFileSync(file, `ssh: {user: root}\nsudo: false\nunitDir: ${dir}/units\nenvDir: ${dir}/env\nlog: {target: file, dir: ${dir}/log}\n${extra}\n`);
  return file;
}

/** Nothing of ours under the config `name`'s directories, and no map for the container. */
function nothingLeft(name: string): void {
  expect(existsSync(mapOf(id))).toBe(false);
  for (const sub of ['units', 'env']) {
    const d = path.join(tmp, name, sub);
    expect(existsSync(d) ? readdirSync(d) : []).toEqual([]);
  }
}

/** A PATH with every command of this one but systemctl (symlinks in a temp dir). */
function pathWithoutSystemctl(): string {
  const farm = path.join(tmp, 'bin');
  mkdirSync(farm, { recursive: true });
  const seen = new Set<string>();
  for (const dir of (process.env.PATH ?? '').split(':')) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names) {
      if (n === 'systemctl' || seen.has(n)) continue;
      seen.add(n);
      symlinkSync(path.join(dir, n), path.join(farm, n));
    }
  }
  return farm;
}

beforeAll(() => {
  if (skip) return;
  ensureBusyboxImage();
  id = runContainer(C, 'sneakpeek-test/busybox:1').slice(0, 12);
  ino = inodeOf(C);
});

afterAll(() => {
  cleanupContainers();
  if (id) rmSync(mapOf(id), { force: true });
  rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(skip)('sneakpeek -t procmon|tcptracer: the template cannot be installed → the container fails, nothing is pinned', () => {
  it.each([
    ['procmon', 'bpftrace', 'bpftrace: /nonexistent/bpftrace', '/nonexistent/bpftrace'],
    ['procmon', 'bcc', 'execsnoop: /nonexistent/execsnoop-bpfcc', '/nonexistent/execsnoop-bpfcc'],
    ['tcptracer', 'bcc', 'tcptracer: /nonexistent/tcptracer-bpfcc', '/nonexistent/tcptracer-bpfcc'],
  ])('-t %s --backend %s, the tracer binary missing: exit 1, no map', (type, backend, paths, bin) => {
    const name = `nobin-${type}-${backend}`;
    const r = runTool('sneakpeek', ['-t', type, '--backend', backend, '-n', C], { env: { SNEAKPEEK_CONFIG: config(name, `paths: {${paths}}`) } });
    expect(r.stderr).toBe(`sneakpeek: ${C}: ${bin} not found on this node (config paths)\n`);
    expect(r.stdout).toBe('');
    expect(r.code).toBe(1);
    nothingLeft(name);
  });

  it('systemctl missing on the node: exit 1, no map', () => {
    const r: Run = runTool('sneakpeek', ['-t', 'procmon', '--backend', 'bpftrace', '-n', C], {
      env: { SNEAKPEEK_CONFIG: config('nosystemctl', ''), PATH: pathWithoutSystemctl() },
    });
    expect(r.stderr).toBe(`sneakpeek: ${C}: systemctl not found on this node (systemd required)\n`);
    expect(r.code).toBe(1);
    nothingLeft('nosystemctl');
  });
});

describe.skipIf(skip)('bpftool_map_container_ns', () => {
  it("TYPE execsnoop with the tracer binary missing: exit 1, the map is not pinned", () => {
    const cfg = config('bmcn-nobin', 'paths: {bpftrace: /nonexistent/bpftrace}');
    const r = runTool('bpftool_map_container_ns', ['--backend', 'bpftrace', ino, mapOf(id), 'execsnoop'], { env: { SNEAKPEEK_CONFIG: cfg } });
    expect(r.stderr).toBe('bpftool_map_container_ns: localhost: /nonexistent/bpftrace not found on this node (config paths)\n');
    expect(r.stdout).toBe('');
    expect(r.code).toBe(1);
    nothingLeft('bmcn-nobin');
  });

  it.each(['1e3', '0x10', '1.0', '+5'])('INODE %s (a number to yargs, not to stat) → exit 2, nothing pinned', (inode) => {
    const r = runTool('bpftool_map_container_ns', ['--no-start', inode, mapOf(id)]);
    expect(r.stderr.startsWith(`bpftool_map_container_ns: INODE: inode "${inode}" is not a positive decimal integer`)).toBe(true);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toBe('');
    expect(r.code).toBe(2);
    expect(existsSync(mapOf(id))).toBe(false);
  });
});
