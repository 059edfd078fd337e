// -t procmon (setup, --status, --reconcile, --stop), -t tcptracer, -t fswatch and
// bpftool_map_container_ns through transport kubectl:
// the real kubectl against the API double, whose pods' exec runs on this host with a private
// systemd's systemctl shim first on PATH (the double's exec environment), the real bpftool,
// bpftrace and fswatch. One pod per node per command, setup and teardown; every pod deleted;
// the units (started by systemd, not by the pod) outlive it, as on a real node.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexBytesToInode, hostOrder } from '../../lib/endian.ts';
import { runToolAsync, type Run } from '../helpers/cli.ts';
import { cleanupContainers, docker, ensureBusyboxImage, runContainer } from '../helpers/docker.ts';
import { pod, startKube, type KubeEvent, type KubeServer } from '../helpers/kube.ts';
import { commandWorks, dockerUp, EBPF, isRoot, missing } from '../helpers/prereq.ts';
import { startPrivateSystemd, systemdAvailable, type PrivateSystemd } from '../helpers/systemd.ts';

const skip = missing({
  root: isRoot,
  docker: dockerUp,
  'kubectl (v1.32)': () => commandWorks('kubectl', ['version', '--client']),
  ...EBPF,
  'systemd, systemd-analyze, nsenter, unshare': systemdAvailable,
  'fswatch (apt-get install fswatch)': () => existsSync('/usr/bin/fswatch'),
});

const C = { a: `sp-kubectl-transport-mon-a-${process.pid}`, b: `sp-kubectl-transport-mon-b-${process.pid}`, c: `sp-kubectl-transport-mon-c-${process.pid}` };
const where = [['a', 'node-a'], ['b', 'node-a'], ['c', 'node-b']] as const;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'sp-kubectl-transport-mon-'));
let sd: PrivateSystemd;
let kube: KubeServer;
let cfgFile: string;
const ids: Record<string, string> = {};
const full: Record<string, string> = {};

const mapOf = (id: string) => `/sys/fs/bpf/mnt_ns_${id}`;
const inodeOf = (c: string) => execFileSync('stat', ['-Lc', '%i', `/proc/${docker('inspect', '-f', '{{.State.Pid}}', c)}/ns/mnt`], { encoding: 'utf8' }).trim();
const keysOf = (file: string): string[] =>
  (JSON.parse(execFileSync('bpftool', ['-j', 'map', 'dump', 'pinned', file], { encoding: 'utf8' })) as { key: string[] }[]).map((e) => hexBytesToInode(e.key, hostOrder()).toString());
const logOf = (tool: string, id: string) => path.join(sd.dir, 'log', `${tool}-${id}.log`);
const run = (tool: string, args: string[]): Promise<Run> => runToolAsync(tool, args, { env: { ...kube.env, SNEAKPEEK_CONFIG: cfgFile }, timeoutMs: 120_000 });
const sp = (type: string, args: string[]) => run('sneakpeek', ['-t', type, ...args]);

const creates = (ev: KubeEvent[]) => ev.filter((e) => e.verb === 'create' && !e.dryRun && e.code === 201);
/** Pods made since `mark`, per node; each deleted, nothing of it left running. */
async function podsPerNode(mark: number): Promise<Record<string, number>> {
  const ev = kube.events.slice(mark);
  const made = creates(ev).map((e) => e.name);
  expect(ev.filter((e) => e.verb === 'delete' && e.code === 200).map((e) => e.name).sort()).toEqual([...made].sort());
  for (let i = 0; i < 200 && kube.pods().some((p) => made.includes(String((p.metadata as Record<string, unknown>).name))); i++) await new Promise((r) => setTimeout(r, 25));
  expect(kube.pods().map((p) => String((p.metadata as Record<string, unknown>).name)).filter((n) => made.includes(n))).toEqual([]);
  expect(kube.processes()).toEqual({});
  const m: Record<string, number> = {};
  for (const e of creates(ev)) m[e.node!] = (m[e.node!] ?? 0) + 1;
  return m;
}

beforeAll(async () => {
  if (skip) return;
  ensureBusyboxImage();
  for (const [k, name] of Object.entries(C)) {
    full[k] = runContainer(name, 'sneakpeek-test/busybox:1');
    ids[k] = full[k]!.slice(0, 12);
  }
  sd = await startPrivateSystemd('kubectl-transport');
  kube = await startKube({
    pods: [
      pod({ name: 'a-0', nodeName: 'node-a', hostIP: '127.0.0.2', containers: [{ name: 'a', id: full.a }, { name: 'b', id: full.b }] }),
      pod({ name: 'c-0', nodeName: 'node-b', hostIP: '127.0.0.3', containers: [{ name: 'c', id: full.c }] }),
    ],
    // what a node's own systemctl would be: the private instance's shim, first on PATH
    execEnv: { PATH: `${sd.binDir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` },
    startMs: 50,
  });
  cfgFile = path.join(tmp, 'sneakpeek.yaml');
  writeFileSync(
    cfgFile,
    `transport: kubectl
sudo: false
concurrency: 1          # both "nodes" are this host: one unit dir, one node at a time
unitDir: ${sd.unitDir}
envDir: ${path.join(sd.dir, 'env')}
log: {target: file, dir: ${path.join(sd.dir, 'log')}}
lock: {file: ${path.join(tmp, 'lock')}, wait: 30}
`,
  );
}, 120_000);

afterAll(async () => {
  await kube?.close();
  cleanupContainers();
  await sd?.stop();
  for (const id of Object.values(ids)) rmSync(mapOf(id), { force: true });
  rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(skip)('monitors through transport kubectl', () => {
  it('-t procmon --backend bpftrace -A: maps hold exactly each inode, units run; one pod per node, each deleted', async () => {
    const mark = kube.events.length;
    const r = await sp('procmon', ['--backend', 'bpftrace', '-A']);
    expect(r.stderr).toBe('3 ok, 0 failed\n');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(
      where.map(([k, node]) => `${node},${ids[k]} execsnoop@${ids[k]}.service started ${logOf('execsnoop', ids[k]!)} ${inodeOf(C[k])} ${mapOf(ids[k]!)} created`).sort(),
    );
    for (const [k] of where) {
      expect(keysOf(mapOf(ids[k]!))).toEqual([inodeOf(C[k])]);
      expect(sd.systemctl('is-active', `execsnoop@${ids[k]}.service`).stdout.trim()).toBe('active');
    }
    expect(await podsPerNode(mark)).toEqual({ 'node-a': 1, 'node-b': 1 });
  }, 60_000);

  it('-t procmon --status and --reconcile through a pod (read back what the setup made; nothing to change)', async () => {
    const mark = kube.events.length;
    const st = await sp('procmon', ['--status', '-a', 'node-b', '-n', ids.c!]);
    expect([st.code, st.stdout, st.stderr]).toEqual([0, `node-b,${ids.c} execsnoop@${ids.c}.service active\n`, '1 active\n']);
    const rc = await sp('procmon', ['--reconcile', '--backend', 'bpftrace', '-a', 'node-b', '-n', ids.c!]);
    expect(rc.code, rc.stderr).toBe(0);
    expect(rc.stdout).toBe(''); // only changes are lines
    expect(rc.stderr).toBe('0 started, 0 restarted, 0 removed, 1 unchanged\n');
    expect(await podsPerNode(mark)).toEqual({ 'node-b': 2 });
  }, 60_000);

  it('-t procmon --stop --purge -A: all gone; one pod per node', async () => {
    const mark = kube.events.length;
    const r = await sp('procmon', ['--stop', '--purge', '-A']);
    expect(r.stderr.trimEnd().split('\n').pop()).toBe('3 ok, 0 failed');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(where.map(([k, node]) => `${node},${ids[k]} execsnoop@${ids[k]}.service stopped ${mapOf(ids[k]!)} removed`).sort());
    for (const id of Object.values(ids)) expect(existsSync(mapOf(id))).toBe(false);
    expect(existsSync(path.join(sd.unitDir, 'execsnoop@.service'))).toBe(false);
    expect(await podsPerNode(mark)).toEqual({ 'node-a': 1, 'node-b': 1 });
  }, 60_000);

  it('-t tcptracer -A, then --stop --purge: one pod per node each time', async () => {
    let mark = kube.events.length;
    const up = await sp('tcptracer', ['--backend', 'bpftrace', '-A']);
    expect(up.stderr).toBe('3 ok, 0 failed\n');
    expect(up.code).toBe(0);
    expect(up.stdout.split('\n').filter(Boolean).sort()).toEqual(
      where.map(([k, node]) => `${node},${ids[k]} tcptracer@${ids[k]}.service started ${logOf('tcptracer', ids[k]!)} ${inodeOf(C[k])} ${mapOf(ids[k]!)} created`).sort(),
    );
    for (const [k] of where) expect(sd.systemctl('is-active', `tcptracer@${ids[k]}.service`).stdout.trim()).toBe('active');
    expect(await podsPerNode(mark)).toEqual({ 'node-a': 1, 'node-b': 1 });
    mark = kube.events.length;
    const down = await sp('tcptracer', ['--stop', '--purge', '-A']);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stderr.trimEnd().split('\n').pop()).toBe('3 ok, 0 failed');
    expect(down.stdout.split('\n').filter(Boolean).sort()).toEqual(where.map(([k, node]) => `${node},${ids[k]} tcptracer@${ids[k]}.service stopped ${mapOf(ids[k]!)} removed`).sort());
    expect(existsSync(path.join(sd.unitDir, 'tcptracer@.service'))).toBe(false);
    expect(await podsPerNode(mark)).toEqual({ 'node-a': 1, 'node-b': 1 });
  }, 90_000);

  it('-t fswatch -A, then --stop --purge: one pod per node each time', async () => {
    let mark = kube.events.length;
    const up = await sp('fswatch', ['-A']);
    expect(up.stderr).toBe('3 ok, 0 failed\n');
    expect(up.code).toBe(0);
    expect(up.stdout.split('\n').filter(Boolean).sort()).toEqual(where.map(([k, node]) => `${node},${ids[k]} fswatch@${ids[k]}.service started ${logOf('fswatch', ids[k]!)}`).sort());
    for (const [k] of where) expect(sd.systemctl('is-active', `fswatch@${ids[k]}.service`).stdout.trim()).toBe('active');
    expect(await podsPerNode(mark)).toEqual({ 'node-a': 1, 'node-b': 1 });
    mark = kube.events.length;
    const down = await sp('fswatch', ['--stop', '--purge', '-A']);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stderr.trimEnd().split('\n').pop()).toBe('3 ok, 0 failed');
    expect(down.stdout.split('\n').filter(Boolean).sort()).toEqual(where.map(([k, node]) => `${node},${ids[k]} fswatch@${ids[k]}.service stopped`).sort());
    expect(existsSync(path.join(sd.unitDir, 'fswatch@.service'))).toBe(false);
    expect(await podsPerNode(mark)).toEqual({ 'node-a': 1, 'node-b': 1 });
  }, 90_000);

  it('get_container_ns -a NODE | bpftool_map_container_ns -a NODE … execsnoop, each through one pod; then -t procmon --stop -a NODE -n ID', async () => {
    let mark = kube.events.length;
    const ns = await run('get_container_ns', ['-a', 'node-b', '-n', ids.c!]);
    expect([ns.code, ns.stdout, ns.stderr]).toEqual([0, `${inodeOf(C.c)}\n`, '']);
    const r = await run('bpftool_map_container_ns', ['-a', 'node-b', '--backend', 'bpftrace', ns.stdout.trim(), mapOf(ids.c!), 'execsnoop']);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toBe(`${mapOf(ids.c!)} ${inodeOf(C.c)} created execsnoop@${ids.c}.service started\n`);
    expect(keysOf(mapOf(ids.c!))).toEqual([inodeOf(C.c)]);
    expect(sd.systemctl('is-active', `execsnoop@${ids.c}.service`).stdout.trim()).toBe('active');
    expect(await podsPerNode(mark)).toEqual({ 'node-b': 2 });
    mark = kube.events.length;
    const down = await sp('procmon', ['--stop', '--purge', '-a', 'node-b', '-n', ids.c!]);
    expect([down.code, down.stdout]).toEqual([0, `${ids.c} execsnoop@${ids.c}.service stopped ${mapOf(ids.c!)} removed\n`]);
    expect(existsSync(mapOf(ids.c!))).toBe(false);
    expect(await podsPerNode(mark)).toEqual({ 'node-b': 1 });
  }, 60_000);
});
