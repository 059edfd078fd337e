// -t procmon, -t tcptracer and -t fswatch cluster-wide over real ssh: two loopback "nodes"
// (test/helpers/sshd.ts), pods from a saved pod list, a private systemd (its systemctl shim
// first on the sessions' PATH through sshd's SetEnv). Proves ONE ssh session per node per
// command, setup and teardown.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexBytesToInode, hostOrder } from '../../lib/endian.ts';
import { runTool } from '../helpers/cli.ts';
import { cleanupContainers, docker, ensureBusyboxImage, runContainer } from '../helpers/docker.ts';
import { pod } from '../helpers/kube.ts';
import { dockerUp, EBPF, isRoot, missing } from '../helpers/prereq.ts';
import { sshdInstalled, startSshd, type Sshd } from '../helpers/sshd.ts';
import { startPrivateSystemd, systemdAvailable, type PrivateSystemd } from '../helpers/systemd.ts';

const skip = missing({
  root: isRoot,
  docker: dockerUp,
  'openssh-server': sshdInstalled,
  ...EBPF,
  'systemd, systemd-analyze, nsenter, unshare': systemdAvailable,
  'fswatch (apt-get install fswatch)': () => existsSync('/usr/bin/fswatch'),
});

const NODE2 = '127.0.0.2';
const NODE3 = '127.0.0.3';
const C = { a: `sp-monssh-a-${process.pid}`, b: `sp-monssh-b-${process.pid}`, c: `sp-monssh-c-${process.pid}` };
const tmp = mkdtempSync(path.join(os.tmpdir(), 'sp-monssh-'));
let sd: PrivateSystemd;
let sshd: Sshd;
let cfgFile: string;
const ids: Record<string, string> = {};
const full: Record<string, string> = {};

const mapOf = (id: string) => `/sys/fs/bpf/mnt_ns_${id}`;
const inodeOf = (c: string) => execFileSync('stat', ['-Lc', '%i', `/proc/${docker('inspect', '-f', '{{.State.Pid}}', c)}/ns/mnt`], { encoding: 'utf8' }).trim();
const keysOf = (file: string): string[] =>
  (JSON.parse(execFileSync('bpftool', ['-j', 'map', 'dump', 'pinned', file], { encoding: 'utf8' })) as { key: string[] }[]).map((e) => hexBytesToInode(e.key, hostOrder()).toString());
const run = (args: string[], type = 'procmon') => runTool('sneakpeek', ['-t', type, ...args], { env: { SNEAKPEEK_CONFIG: cfgFile } });
const logOf = (tool: string, id: string) => path.join(sd.dir, 'log', `${tool}-${id}.log`);
const where = [['a', NODE2], ['b', NODE2], ['c', NODE3]] as const;

beforeAll(async () => {
  if (skip) return;
  ensureBusyboxImage();
  for (const [k, name] of Object.entries(C)) {
    full[k] = runContainer(name, 'sneakpeek-test/busybox:1');
    ids[k] = full[k]!.slice(0, 12);
  }
  sd = await startPrivateSystemd('monssh');
  // The sessions' systemctl is the private instance's shim; nothing else changes on PATH.
  sshd = await startSshd({ addresses: [NODE2, NODE3], sshdConfig: `SetEnv PATH=${sd.binDir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` });
  cfgFile = sshd.writeConfig({
    sudo: false,
    // Both "nodes" are this host: one unit dir, so one node at a time.
    concurrency: 1,
    unitDir: sd.unitDir,
    envDir: path.join(sd.dir, 'env'),
    log: { target: 'file', dir: path.join(sd.dir, 'log') },
  });
  const pods = {
    kind: 'PodList',
    items: [
      pod({ name: 'a-0', hostIP: NODE2, containers: [{ name: 'a', id: full.a }] }),
      pod({ name: 'b-0', hostIP: NODE2, containers: [{ name: 'b', id: full.b }] }),
      pod({ name: 'c-0', hostIP: NODE3, containers: [{ name: 'c', id: full.c }] }),
    ],
  };
  writeFileSync(path.join(tmp, 'pods.json'), JSON.stringify(pods));
});

afterAll(async () => {
  cleanupContainers();
  await sshd?.stop();
  await sd?.stop();
  for (const id of Object.values(ids)) rmSync(mapOf(id), { force: true });
  rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(skip)('sneakpeek -t procmon over ssh', () => {
  it('sets up every container with one ssh session per node', () => {
    const mark = sshd.mark();
    const r = run(['--backend', 'bpftrace', '--pods-file', path.join(tmp, 'pods.json')]);
    expect(r.stderr).toBe('3 ok, 0 failed\n');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n').filter(Boolean).sort();
    expect(lines).toHaveLength(3);
    for (const [k, node] of [['a', NODE2], ['b', NODE2], ['c', NODE3]] as const) {
      expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${node.replace(/\./g, '\\.')},${ids[k]} execsnoop@${ids[k]}\\.service started \\S+ ${inodeOf(C[k])} ${mapOf(ids[k]!)} created$`)));
      expect(keysOf(mapOf(ids[k]!))).toEqual([inodeOf(C[k])]);
      expect(sd.systemctl('is-active', `execsnoop@${ids[k]}.service`).stdout.trim()).toBe('active');
    }
    expect(Object.fromEntries(sshd.sessions(mark))).toEqual({ [NODE2]: 1, [NODE3]: 1 });
  });

  it('tears everything down with one ssh session per node; nothing is left', () => {
    const mark = sshd.mark();
    const r = run(['--stop', '--purge', '--pods-file', path.join(tmp, 'pods.json')]);
    // Both nodes are this host: the first one done still sees the other's instance.
    expect(r.stderr).toMatch(/^sneakpeek: warning: 127\.0\.0\.[23]: template \S+execsnoop@\.service kept: 1 other instance\(s\) still configured, 1 running\n3 ok, 0 failed\n$/);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(
      [`${NODE2},${ids.a} execsnoop@${ids.a}.service stopped ${mapOf(ids.a!)} removed`, `${NODE2},${ids.b} execsnoop@${ids.b}.service stopped ${mapOf(ids.b!)} removed`,
        `${NODE3},${ids.c} execsnoop@${ids.c}.service stopped ${mapOf(ids.c!)} removed`].sort(),
    );
    expect(Object.fromEntries(sshd.sessions(mark))).toEqual({ [NODE2]: 1, [NODE3]: 1 });
    for (const id of Object.values(ids)) expect(existsSync(mapOf(id))).toBe(false);
    expect(existsSync(path.join(sd.unitDir, 'execsnoop@.service'))).toBe(false);
    expect(existsSync(path.join(sd.dir, 'env'))).toBe(false);
  });
});

describe.skipIf(skip)('sneakpeek -t tcptracer over ssh', () => {
  it('sets up every container with one ssh session per node', () => {
    const mark = sshd.mark();
    const r = run(['--backend', 'bpftrace', '--pods-file', path.join(tmp, 'pods.json')], 'tcptracer');
    expect(r.stderr).toBe('3 ok, 0 failed\n');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(
      where.map(([k, node]) => `${node},${ids[k]} tcptracer@${ids[k]}.service started ${logOf('tcptracer', ids[k]!)} ${inodeOf(C[k])} ${mapOf(ids[k]!)} created`).sort(),
    );
    for (const [k] of where) expect(sd.systemctl('is-active', `tcptracer@${ids[k]}.service`).stdout.trim()).toBe('active');
    expect(Object.fromEntries(sshd.sessions(mark))).toEqual({ [NODE2]: 1, [NODE3]: 1 });
  });

  it('tears everything down with one ssh session per node', () => {
    const mark = sshd.mark();
    const r = run(['--stop', '--purge', '--pods-file', path.join(tmp, 'pods.json')], 'tcptracer');
    expect(r.stderr.trimEnd().split('\n').pop()).toBe('3 ok, 0 failed');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(
      where.map(([k, node]) => `${node},${ids[k]} tcptracer@${ids[k]}.service stopped ${mapOf(ids[k]!)} removed`).sort(),
    );
    expect(Object.fromEntries(sshd.sessions(mark))).toEqual({ [NODE2]: 1, [NODE3]: 1 });
    for (const id of Object.values(ids)) expect(existsSync(mapOf(id))).toBe(false);
    expect(existsSync(path.join(sd.unitDir, 'tcptracer@.service'))).toBe(false);
  });
});

describe.skipIf(skip)('sneakpeek -t fswatch over ssh', () => {
  it('sets up every container with one ssh session per node', () => {
    const mark = sshd.mark();
    const r = run(['--pods-file', path.join(tmp, 'pods.json')], 'fswatch');
    expect(r.stderr).toBe('3 ok, 0 failed\n');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(
      where.map(([k, node]) => `${node},${ids[k]} fswatch@${ids[k]}.service started ${logOf('fswatch', ids[k]!)}`).sort(),
    );
    for (const [k] of where) expect(sd.systemctl('is-active', `fswatch@${ids[k]}.service`).stdout.trim()).toBe('active');
    expect(Object.fromEntries(sshd.sessions(mark))).toEqual({ [NODE2]: 1, [NODE3]: 1 });
  });

  it('tears everything down with one ssh session per node', () => {
    const mark = sshd.mark();
    const r = run(['--stop', '--purge', '--pods-file', path.join(tmp, 'pods.json')], 'fswatch');
    expect(r.stderr.trimEnd().split('\n').pop()).toBe('3 ok, 0 failed');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(where.map(([k, node]) => `${node},${ids[k]} fswatch@${ids[k]}.service stopped`).sort());
    expect(Object.fromEntries(sshd.sessions(mark))).toEqual({ [NODE2]: 1, [NODE3]: 1 });
    expect(existsSync(path.join(sd.unitDir, 'fswatch@.service'))).toBe(false);
    expect(existsSync(path.join(sd.dir, 'env'))).toBe(false);
  });
});
