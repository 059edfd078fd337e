// -t procmon (setup, --status, --reconcile, --stop), -t tcptracer, -t fswatch and
// bpftool_map_container_ns through transport kubectl:
// the real kubectl against the API double, whose pods' exec runs on this host with a private
// systemd's systemctl shim first on PATH (the double's exec environment), the real bpftool,
// bpftrace and fswatch. One pod per node per command, setup and teardown; every pod deleted;
// the units (started by systemd, not by the pod) outlive it, as on a real node. --events through
// pods, and a --follow whose pods take over from one another.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexBytesToInode, hostOrder } from '../../lib/endian.ts';
import { ROOT, runToolAsync, TSX, type Run } from '../helpers/cli.ts';
import { cleanupContainers, docker, dockerTry, ensureBusyboxImage, runContainer } from '../helpers/docker.ts';
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

async function waitFor(ok: () => boolean, ms = 30_000): Promise<void> {
  for (const end = Date.now() + ms; !ok(); await new Promise((r) => setTimeout(r, 200))) if (Date.now() > end) throw new Error('timed out waiting');
}
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

  it('--events through pods: one pod per node, events labelled with the node\'s name and pod; --follow: a new pod takes over every timeouts.events, every number once', async () => {
    // (the execs of --events's own pods' scripts are on the host, not in the containers: not traced)
    for (const [k] of where) await waitFor(() => /Tracing exec in/.test(existsSync(logOf('execsnoop', ids[k]!)) ? readFileSync(logOf('execsnoop', ids[k]!), 'utf8') : ''));
    for (const [k] of where) dockerTry('exec', C[k], 'ls', `/sp-kubectl-transport-events-${k}`);
    const seen = (out: string) => where.every(([k]) => out.includes(`/sp-kubectl-transport-events-${k}`));
    let mark = kube.events.length;
    let r = await sp('procmon', ['--events', '--json', '-A']);
    for (let i = 0; i < 20 && !seen(r.stdout); i++) {
      await new Promise((res) => setTimeout(res, 500));
      mark = kube.events.length;
      r = await sp('procmon', ['--events', '--json', '-A']);
    }
    expect([r.code, r.stderr]).toEqual([0, '3 ok, 0 failed\n']);
    const evs = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const [k, node] of where) {
      expect(evs.find((e) => (e.args as string[]).includes(`/sp-kubectl-transport-events-${k}`))).toMatchObject({
        node, pod: k === 'c' ? 'c-0' : 'a-0', container: k, id: full[k], type: 'procmon', comm: 'ls', filename: '/bin/ls',
      });
    }
    expect(await podsPerNode(mark)).toEqual({ 'node-a': 1, 'node-b': 1 });

    // --follow: each pod lasts timeouts.events (4 s here); the next resumes where it stopped
    const cfgFollow = path.join(tmp, 'follow.yaml');
    writeFileSync(cfgFollow, `${readFileSync(cfgFile, 'utf8')}timeouts: {events: 4}\n`);
    mark = kube.events.length;
    const f = spawn(TSX, [path.join(ROOT, 'scripts/sneakpeek.ts'), '-t', 'procmon', '--events', '--follow', '--json', '--since', '0s', '-a', 'node-a', '-n', ids.a!],
      { env: { ...process.env, ...kube.env, SNEAKPEEK_CONFIG: cfgFollow }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    f.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    f.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    const exit = new Promise<number | null>((res) => f.on('close', (code) => res(code)));
    const N = 400;
    const nums = () => out.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { args: string[] }).args[1] ?? '').map((a) => /^n=(\d+)$/.exec(a)?.[1]).filter(Boolean).map(Number);
    await waitFor(() => creates(kube.events.slice(mark)).length >= 1);
    await new Promise((res) => setTimeout(res, 1500));
    docker('exec', '-d', C.a, 'sh', '-c', `i=0; while [ $i -lt ${N} ]; do i=$((i+1)); /bin/echo n=$i >/dev/null; sleep 0.02; done`);
    await waitFor(() => nums().includes(N), 90_000);
    await new Promise((res) => setTimeout(res, 1500));
    f.kill('SIGINT');
    expect(await exit).toBe(130);
    const seenN = new Map<number, number>();
    for (const n of nums()) seenN.set(n, (seenN.get(n) ?? 0) + 1);
    expect([...Array(N)].map((_, i) => i + 1).filter((n) => seenN.get(n) !== 1)).toEqual([]);
    // several pods in turn on node-a, each deleted; no word about them on stderr
    const made = creates(kube.events.slice(mark));
    expect(made.length).toBeGreaterThanOrEqual(3);
    expect(new Set(made.map((e) => e.node))).toEqual(new Set(['node-a']));
    expect(await podsPerNode(mark)).toEqual({ 'node-a': made.length });
    expect(err).toBe('interrupted (SIGINT): 1 ok, 0 failed\n');
  }, 180_000);

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
