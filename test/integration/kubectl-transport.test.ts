// Transport kubectl with the REAL kubectl (v1.32) against the Kubernetes API double
// (test/helpers/kube.ts), whose pods' exec runs on this host: the node scripts hit the real
// docker. Proves: -t files cluster-wide through pods equals docker diff; one pod per node per
// command (creates counted); every pod deleted on success, failure, deadline, Ctrl-C and
// SIGTERM; a node whose pod cannot start (Pending on a dead node, image pull, rejected,
// unschedulable, slow) fails alone with the reason from the pod's status; flat memory for a
// 30k-file -t files (a reader that stops stops the node); sneakpeek --cleanup removes what a SIGKILLed run left.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runToolAsync, TSX, type Run } from '../helpers/cli.ts';
import { cleanupContainers, docker, dockerDiffSorted, ensureBusyboxImage, exec, runContainer, sortBytes } from '../helpers/docker.ts';
import { shQuote } from '../../lib/quote.ts';
import { pod, startKube, type KubeEvent, type KubeServer } from '../helpers/kube.ts';
import { commandWorks, dockerUp, isRoot, missing } from '../helpers/prereq.ts';
import { alive } from '../helpers/procs.ts';

const skip = missing({
  root: isRoot,
  docker: dockerUp,
  'kubectl (v1.32)': () => commandWorks('kubectl', ['version', '--client']),
  'flock (util-linux)': () => commandWorks('flock', ['--version']),
});

type Obj = Record<string, unknown>;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'sp-kubectl-transport-'));
const lockFile = path.join(tmp, 'node.lock');
const C = (n: string) => `sp-kubectl-transport-${n}-${process.pid}`;
const ids: Record<string, string> = {};
const short = (n: string) => ids[n]!.slice(0, 12);
let kube: KubeServer;
let cfgFile: string;
let basePods: Obj[];

const env = (extra: Record<string, string> = {}) => ({ ...kube.env, SNEAKPEEK_CONFIG: cfgFile, ...extra });
const run = (tool: string, args: string[], extra: Record<string, string> = {}): Promise<Run> =>
  runToolAsync(tool, args, { env: env(extra), timeoutMs: 90_000 });

/** bin/<tool>: ONE node process (the launcher execs node), so a signal reaches sneakpeek itself. */
function launch(tool: string, args: string[]): { child: ChildProcess; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> } {
  const child = spawn(path.join(ROOT, 'bin', tool), args, { env: { ...process.env, ...env() }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (c: Buffer) => out.push(c));
  child.stderr!.on('data', (c: Buffer) => err.push(c));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    }),
  );
  return { child, done };
}

/** The real kubectl against the double (async: the double answers from this process). */
function kubectl(args: string[], input = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn('kubectl', args, { env: { ...process.env, ...env() }, stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (c: Buffer) => out.push(c));
  child.stderr!.on('data', (c: Buffer) => err.push(c));
  child.stdin!.end(input);
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() })));
}

async function until<T>(fn: () => T | undefined | false, ms = 15_000, what = 'condition'): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const meta = (o: Obj) => o.metadata as Obj;
const labels = (o: Obj) => (meta(o).labels ?? {}) as Record<string, string>;
/** Pods sneakpeek made that the API still has. */
const managed = () => kube.pods().filter((p) => labels(p)['app.kubernetes.io/managed-by'] === 'sneakpeek').map((p) => String(meta(p).name));
const creates = (ev: KubeEvent[]) => ev.filter((e) => e.verb === 'create' && !e.dryRun && e.code === 201);
const perNode = (ev: KubeEvent[]) => {
  const m: Record<string, number> = {};
  for (const e of creates(ev)) m[e.node!] = (m[e.node!] ?? 0) + 1;
  return m;
};
/** Every pod created since `mark` was deleted once, and nothing of it runs any more. */
async function allDeleted(mark: number): Promise<KubeEvent[]> {
  const ev = kube.events.slice(mark);
  const made = creates(ev).map((e) => e.name);
  expect(made.length).toBeGreaterThan(0);
  expect(ev.filter((e) => e.verb === 'delete' && e.code === 200).map((e) => e.name).sort()).toEqual([...made].sort());
  // a graceful delete goes once the "kubelet" killed the processes (terminateMs)
  await until(() => !managed().some((n) => made.includes(n)), 5000, 'pods gone');
  expect(kube.processes()).toEqual({});
  return ev;
}
const mntIno = (name: string) => String(statSync(`/proc/${docker('inspect', '-f', '{{.State.Pid}}', name)}/ns/mnt`).ino);
/** Hold the node lock (config lock.file) so that a node script waits in sp_lock; returns the release. */
function holdLock(): () => void {
  const holder = spawn('flock', [lockFile, 'sleep', '120'], { stdio: 'ignore' });
  return () => holder.kill('SIGKILL');
}

beforeAll(async () => {
  if (skip) return;
  const image = ensureBusyboxImage();
  const start = (name: string, changes: string) => {
    ids[name] = runContainer(C(name), image);
    exec(C(name), changes);
  };
  start('a1', 'echo hi > /etc/motd; rm /data/keep.txt; mkdir -p /newdir/x; touch /newdir/x/f');
  start('a2', 'rm -r /data/old; echo x > /tmp/new');
  start('b1', 'chmod 700 /etc/app; echo 2 >> /etc/app/app.conf');
  basePods = [
    pod({ name: 'web-0', nodeName: 'node-a', hostIP: '127.0.0.2', containers: [{ name: 'app', id: ids.a1 }, { name: 'side', id: ids.a2 }] }),
    pod({ name: 'db-0', nodeName: 'node-b', hostIP: '127.0.0.3', containers: [{ name: 'db', id: ids.b1 }] }),
  ];
  kube = await startKube({
    pods: basePods,
    nodes: [
      { name: 'node-dead', ip: '127.0.0.4', fate: 'not-ready' },
      { name: 'node-pull', ip: '127.0.0.5', fate: 'image-pull', startMs: 200 },
      { name: 'node-full', ip: '127.0.0.6', fate: 'rejected' },
      { name: 'node-tainted', ip: '127.0.0.7', fate: 'unschedulable' },
      { name: 'node-slow', ip: '127.0.0.8', startMs: 60_000 },
      { name: 'node-hung', ip: '127.0.0.9', execHang: true },
    ],
    startMs: 100,
  });
  cfgFile = path.join(tmp, 'sneakpeek.yaml');
  writeFileSync(cfgFile, `transport: kubectl\nconcurrency: 8\nsudo: false\nkubectl:\n  startTimeout: 5\nlock:\n  file: ${lockFile}\n  wait: 60\n`);
}, 120_000);

afterAll(async () => {
  await kube?.close();
  cleanupContainers();
  rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(skip)('transport kubectl: the same scripts through a pod per node', () => {
  it('-t files --chroot -A equals docker diff for every container; one pod per node; every pod deleted', async () => {
    const mark = kube.events.length;
    const r = await run('sneakpeek', ['-t', 'files', '--chroot', '-A']);
    expect(r.stderr).toBe('3 ok, 0 failed\n');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n').filter(Boolean);
    let total = 0;
    for (const [c, node] of [['a1', 'node-a'], ['a2', 'node-a'], ['b1', 'node-b']] as const) {
      const prefix = `${node},${short(c)} `;
      const mine = lines.filter((l) => l.startsWith(prefix)).map((l) => l.slice(prefix.length));
      expect(mine.length).toBeGreaterThan(0);
      expect(sortBytes(mine)).toEqual(dockerDiffSorted(C(c)));
      total += mine.length;
    }
    expect(lines).toHaveLength(total);
    const ev = await allDeleted(mark);
    expect(perNode(ev)).toEqual({ 'node-a': 1, 'node-b': 1 });
    // each pod: one exec, the nsenter line, the node's own deadline (timeouts.files 900)
    const pods = creates(ev).map((e) => e.name);
    const execs = kube.execs.filter((x) => pods.includes(x.pod));
    expect(execs).toHaveLength(2);
    for (const x of execs) {
      expect(x.command).toEqual(['nsenter', '-t', '1', '-m', '-u', '-i', '-n', '-p', '--', 'timeout', '-k', '5', '900', 'sh', '-s']);
      expect(x).toMatchObject({ container: 'sneakpeek', stdin: true, exitCode: 0, stdinClosed: true, clientGone: false, killed: false });
    }
    // no polling: each pod is watched once until it runs
    for (const name of pods) expect(kube.requests.filter((u) => u.includes('watch=true') && u.includes(`metadata.name%3D${name}`))).toHaveLength(1);
    // the pods as made: pinned, host namespaces, privileged, bounded, labelled with one run id
    const made = kube.events.slice(mark).filter((e) => e.verb === 'create').map((e) => e.labels!['sneakpeek.io/run']);
    expect(new Set(made).size).toBe(1);
  });

  it('--dry-run says how each script would travel, and makes no pod', async () => {
    const mark = kube.events.length;
    const r = await run('sneakpeek', ['-t', 'files', '-A', '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^# node: node-a\n# via: a pod on node node-a \(namespace default, image busybox:1\.36\), then kubectl exec -i POD -- nsenter -t 1 -m -u -i -n -p -- timeout -k 5 900 sh -s\n# sneakpeek node script/m);
    expect(kube.events.length).toBe(mark);
  });

  it('get_all_containers --transport kubectl prints node names, what -a takes; get_container_ns -a NODE through one pod', async () => {
    const g = await run('get_all_containers', ['-A']);
    expect([g.code, g.stderr]).toEqual([0, '']);
    expect(g.stdout).toBe(`node-a,${short('a1')}\nnode-a,${short('a2')}\nnode-b,${short('b1')}\n`);
    const mark = kube.events.length;
    const r = await run('get_container_ns', ['-a', 'node-b', '-n', short('b1')]);
    expect([r.code, r.stdout, r.stderr]).toEqual([0, `${mntIno(C('b1'))}\n`, '']);
    expect(perNode(await allDeleted(mark))).toEqual({ 'node-b': 1 });
    // over ssh the same line starts with the node's IP
    const ssh = await run('get_all_containers', ['-A', '--transport', 'ssh']);
    expect(ssh.stdout).toBe(`127.0.0.2,${short('a1')}\n127.0.0.2,${short('a2')}\n127.0.0.3,${short('b1')}\n`);
  });

  it('-t merged_dir -A through pods: the merged dirs docker reports', async () => {
    const mark = kube.events.length;
    const r = await run('sneakpeek', ['-t', 'merged_dir', '-A']);
    expect([r.code, r.stderr]).toEqual([0, '3 ok, 0 failed\n']);
    const merged = (c: string) => docker('inspect', '-f', '{{.GraphDriver.Data.MergedDir}}', C(c));
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(
      [`node-a,${short('a1')} ${merged('a1')}`, `node-a,${short('a2')} ${merged('a2')}`, `node-b,${short('b1')} ${merged('b1')}`].sort(),
    );
    expect(perNode(await allDeleted(mark))).toEqual({ 'node-a': 1, 'node-b': 1 });
  });

  it('a node whose pod cannot start fails alone, with the reason from the pod status, within kubectl.startTimeout; every pod deleted', async () => {
    const bad = ['node-dead', 'node-pull', 'node-full', 'node-tainted', 'node-slow'];
    kube.setPods([...basePods, ...bad.map((n, i) => pod({ name: `x-${i}`, nodeName: n, hostIP: `127.0.0.${4 + i}`, containers: [{ name: 'x', id: String(i + 1).repeat(64) }] }))]);
    try {
      const mark = kube.events.length;
      const t0 = Date.now();
      const r = await run('sneakpeek', ['-t', 'files', '--chroot', '-A']);
      const secs = (Date.now() - t0) / 1000;
      expect(r.code).toBe(1);
      const err = r.stderr.split('\n').filter(Boolean);
      expect(err.pop()).toBe('3 ok, 5 failed');
      const pod_ = 'pod default/sneakpeek-[a-z0-9]+-\\d+';
      expect(err.sort()).toEqual(
        [
          new RegExp(`^sneakpeek: node-dead,1{12}: node-dead: node node-dead is not Ready \\(NodeStatusUnknown: Kubelet stopped posting node status\\.\\); ${pod_} stays Pending$`),
          new RegExp(`^sneakpeek: node-full,3{12}: node-full: ${pod_}: pod Failed: OutOfcpu: Pod was rejected: Node didn't have enough resource: cpu, requested: 100, used: 3950, capacity: 4000$`),
          new RegExp(`^sneakpeek: node-pull,2{12}: node-pull: ${pod_}: (ErrImagePull|ImagePullBackOff): .*failed to pull and unpack image "docker\\.io/library/busybox:1\\.36"`),
          new RegExp(`^sneakpeek: node-slow,5{12}: node-slow: ${pod_} not Running after 5s \\(kubectl\\.startTimeout\\): ContainerCreating$`),
          new RegExp(`^sneakpeek: node-tainted,4{12}: node-tainted: ${pod_}: Unschedulable: 0/\\d+ nodes are available: `),
        ].map((re) => expect.stringMatching(re)),
      );
      // the good nodes' output is whole
      expect(r.stdout.split('\n').filter((l) => l.startsWith(`node-b,${short('b1')} `)).map((l) => l.split(' ').slice(1).join(' ')).sort()).toEqual(dockerDiffSorted(C('b1')));
      expect(secs).toBeLessThan(5 + 6); // startTimeout + kubectl calls, not the node deadline
      const ev = await allDeleted(mark);
      expect(perNode(ev)).toEqual(Object.fromEntries(['node-a', 'node-b', ...bad].map((n) => [n, 1])));
      // a pod that never ran is deleted at once (forced: no kubelet would confirm)
      const force = ev.filter((e) => e.verb === 'delete' && e.gracePeriodSeconds === 0).map((e) => e.node).sort();
      expect(force).toEqual([...bad].sort());
    } finally {
      kube.setPods(basePods);
    }
  }, 60_000);

  it.each([
    ['an unknown node', 'node-nope', /^get_container_ns: node-nope: no such node \(Error from server \(NotFound\): nodes "node-nope" not found\)\n$/],
  ])('%s fails with one line; its pod is deleted', async (_l, node, want) => {
    const mark = kube.events.length;
    const r = await run('get_container_ns', ['-a', node, '-n', short('a1')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(want);
    await allDeleted(mark);
  });

  it('-a takes node names with this transport: anything else is a usage error before any pod', async () => {
    const mark = kube.events.length;
    const r = await run('get_container_ns', ['-a', 'Node_A', '-n', short('a1')]);
    expect([r.code, r.stderr]).toEqual([2, 'get_container_ns: invalid node name "Node_A": expected a Kubernetes node name (a-z, 0-9, \'-\', \'.\'), as kubectl get nodes lists it (see get_container_ns --help)\n']);
    expect(kube.events.length).toBe(mark);
  });

  it('deadline, runtime hung (the exec opens, nothing runs): NODE: timed out after Ns; the pod is deleted', async () => {
    const mark = kube.events.length;
    const t0 = Date.now();
    const r = await run('get_container_ns', ['-a', 'node-hung', '-n', short('a1'), '--timeout', '2']);
    expect([r.code, r.stderr]).toEqual([1, 'get_container_ns: node-hung: timed out after 2s\n']);
    expect((Date.now() - t0) / 1000).toBeLessThan(2 + 10 + 5); // deadline + 2 graces + start
    await allDeleted(mark);
  }, 30_000);

  it('deadline on the node: its own `timeout` ends the script (exit 124); the pod is deleted, nothing of it runs', async () => {
    const release = holdLock();
    try {
      const mark = kube.events.length;
      const r = await run('bpftool_map_container_ns', ['-a', 'node-a', '--timeout', '2', '--no-start', mntIno(C('a1')), '/sys/fs/bpf/mnt_ns_sp_kubectl_transport_never']);
      expect([r.code, r.stderr]).toEqual([1, 'bpftool_map_container_ns: node-a: timed out after 2s\n']);
      const ev = await allDeleted(mark);
      const x = kube.execs.find((e) => e.pod === creates(ev)[0]!.name)!;
      expect(x.exitCode).toBe(124);
      expect(existsSync('/sys/fs/bpf/mnt_ns_sp_kubectl_transport_never')).toBe(false);
    } finally {
      release();
    }
  }, 30_000);

  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('%s mid-exec: the run ends with %i, the pod is deleted and what ran in it is gone', async (sig, code) => {
    const release = holdLock();
    try {
      const mark = kube.events.length;
      const p = launch('bpftool_map_container_ns', ['-a', 'node-a', '--no-start', mntIno(C('a1')), '/sys/fs/bpf/mnt_ns_sp_kubectl_transport_never']);
      const name = (await until(() => creates(kube.events.slice(mark))[0], 15_000, 'create')).name;
      // the script runs in the pod (waiting for the lock)
      const pids = await until(() => (kube.processes()[`default/${name}`]?.length ?? 0) >= 2 && kube.processes()[`default/${name}`], 15_000, 'script running');
      p.child.kill(sig);
      const r = await p.done;
      expect([r.code, r.signal]).toEqual([code, null]);
      expect(r.stderr).toBe(`bpftool_map_container_ns: node-a: interrupted (${sig})\n`);
      await allDeleted(mark);
      expect(pids.filter(alive)).toEqual([]);
    } finally {
      release();
    }
  }, 40_000);

  it('Ctrl-C while the pod is starting: it is deleted at once (forced: it never ran)', async () => {
    const mark = kube.events.length;
    const p = launch('get_container_ns', ['-a', 'node-slow', '-n', short('a1')]);
    await until(() => creates(kube.events.slice(mark))[0], 15_000, 'create');
    await new Promise((r) => setTimeout(r, 300)); // polling the pod
    p.child.kill('SIGINT');
    const r = await p.done;
    expect([r.code, r.stderr]).toEqual([130, 'get_container_ns: node-slow: interrupted (SIGINT)\n']);
    const ev = await allDeleted(mark);
    expect(ev.filter((e) => e.verb === 'delete')).toMatchObject([{ node: 'node-slow', gracePeriodSeconds: 0 }]);
  }, 30_000);

  it('a run killed with SIGKILL leaves its pods (and their processes); sneakpeek --cleanup finds and deletes them', async () => {
    const release = holdLock();
    try {
      const mark = kube.events.length;
      const a = launch('bpftool_map_container_ns', ['-a', 'node-a', '--no-start', mntIno(C('a1')), '/sys/fs/bpf/mnt_ns_sp_kubectl_transport_never']);
      const b = launch('get_container_ns', ['-a', 'node-dead', '-n', short('a1')]);
      const podA = (await until(() => creates(kube.events.slice(mark)).find((e) => e.node === 'node-a'), 15_000, 'create a')).name;
      const podB = (await until(() => creates(kube.events.slice(mark)).find((e) => e.node === 'node-dead'), 15_000, 'create b')).name;
      const pids = await until(() => (kube.processes()[`default/${podA}`]?.length ?? 0) >= 2 && kube.processes()[`default/${podA}`], 15_000, 'script running');
      a.child.kill('SIGKILL');
      b.child.kill('SIGKILL');
      await Promise.all([a.done, b.done]);
      await new Promise((r) => setTimeout(r, 300));
      expect(managed().sort()).toEqual([podA, podB].sort());
      expect(pids.every(alive)).toBe(true); // a killed kubectl exec does not end the script

      const dry = await run('sneakpeek', ['--cleanup', '--dry-run']);
      expect(dry.code).toBe(0);
      expect(dry.stdout.split('\n').filter(Boolean).sort()).toEqual([`default/${podA} node-a Running would be deleted`, `default/${podB} node-dead Pending would be deleted`].sort());
      expect(dry.stderr).toBe('2 of 2 pod(s) to delete (namespace default)\n');
      expect(managed().sort()).toEqual([podA, podB].sort());

      const r = await run('sneakpeek', ['--cleanup']);
      expect([r.code, r.stderr]).toEqual([0, '2 of 2 pod(s) deleted (namespace default)\n']);
      expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual([`default/${podA} node-a Running deleted`, `default/${podB} node-dead Pending force-deleted`].sort());
      await allDeleted(mark);
      expect(pids.filter(alive)).toEqual([]);
      const again = await run('sneakpeek', ['--cleanup', '-A']);
      expect([again.code, again.stdout, again.stderr]).toEqual([0, '', '0 of 0 pod(s) deleted (all namespaces)\n']);
    } finally {
      release();
    }
  }, 60_000);

  it('--cleanup deletes only pods sneakpeek made: not another tool\'s that carries the same or a similar label', async () => {
    const foreign = [
      { name: 'helm-thing', labels: { 'app.kubernetes.io/managed-by': 'sneakpeek' } },
      { name: 'sneakpeek-web-0', labels: { 'app.kubernetes.io/managed-by': 'sneakpeek', 'sneakpeek.io/run': 'web' } },
      { name: 'op-thing', labels: { 'app.kubernetes.io/managed-by': 'sneakpeek-operator', 'sneakpeek.io/run': 'abcd' } },
    ];
    for (const f of foreign) {
      const manifest = { apiVersion: 'v1', kind: 'Pod', metadata: { name: f.name, labels: f.labels }, spec: { nodeName: 'node-a', containers: [{ name: 'c', image: 'busybox:1.36' }] } };
      expect(await kubectl(['create', '-f', '-'], JSON.stringify(manifest))).toMatchObject({ code: 0, stderr: '' });
    }
    try {
      const mark = kube.events.length;
      const dry = await run('sneakpeek', ['--cleanup', '-A', '--dry-run']);
      expect([dry.code, dry.stdout, dry.stderr]).toEqual([0, '', '0 of 0 pod(s) to delete (all namespaces)\n']);
      const r = await run('sneakpeek', ['--cleanup', '-A']);
      expect([r.code, r.stdout, r.stderr]).toEqual([0, '', '0 of 0 pod(s) deleted (all namespaces)\n']);
      expect(kube.events.slice(mark).filter((e) => e.verb === 'delete' || e.verb === 'deletecollection')).toEqual([]);
      const names = kube.pods().map((p) => String(meta(p).name));
      for (const f of foreign) expect(names).toContain(f.name);
    } finally {
      await kubectl(['delete', 'pod', ...foreign.map((f) => f.name), '--wait=false', '--grace-period=0', '--force']);
    }
  });

  it('the API server goes away mid-run: the node fails, and the pod that could not be deleted is named with what removes it', async () => {
    const own = await startKube({ nodes: [{ name: 'node-x', ip: '127.0.0.2' }], startMs: 50 });
    const release = holdLock();
    try {
      // a kubeconfig that outlives the server: kubectl then finds nobody at its address
      const kubeconfig = path.join(tmp, 'gone.kubeconfig');
      writeFileSync(kubeconfig, readFileSync(own.kubeconfig));
      const ownEnv = { ...own.env, KUBECONFIG: kubeconfig, SNEAKPEEK_CONFIG: cfgFile };
      const p = runToolAsync('bpftool_map_container_ns', ['-a', 'node-x', '--no-start', mntIno(C('a1')), '/sys/fs/bpf/mnt_ns_sp_kubectl_transport_never'], { env: ownEnv, timeoutMs: 60_000 });
      const name = (await until(() => creates(own.events)[0], 15_000, 'create')).name;
      await until(() => (own.processes()[`default/${name}`]?.length ?? 0) >= 2, 15_000, 'script running');
      await own.close();
      const r = await p;
      expect(r.code).toBe(1);
      const lines = r.stderr.split('\n').filter(Boolean);
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(new RegExp(`^sneakpeek: warning: node-x: pod default/${name} not deleted: The connection to the server 127\\.0\\.0\\.1:\\d+ was refused - did you specify the right host or port\\? \\(sneakpeek --cleanup removes it\\)$`));
      expect(lines[1]).toMatch(/^bpftool_map_container_ns: node-x: /);
    } finally {
      release();
    }
  }, 40_000);

  it.each([
    ['kubectl is not there', 'missing', /^get_container_ns: node-a: \/nonexistent\/kubectl: not found \(set paths\.kubectl in the config\)\n$/],
    ['kubectl is not executable', 'noexec', /^get_container_ns: node-a: cannot create pod default\/sneakpeek-[a-z0-9]+-1: .*Permission denied\n$/],
    ['the API server is not there', 'gone', /^get_container_ns: node-a: cannot create pod default\/sneakpeek-[a-z0-9]+-1: error: error validating "STDIN": error validating data: failed to download openapi: Get "http:\/\/127\.0\.0\.1:\d+\/openapi\/v2\?timeout=32s": dial tcp 127\.0\.0\.1:\d+: connect: connection refused; if you choose to ignore these errors, turn validation off with --validate=false\n$/],
  ])('%s: one line, and no warning about a pod that was never made', async (_l, how, want) => {
    const extra: Record<string, string> = {};
    if (how === 'gone') {
      const own = await startKube({});
      const kubeconfig = path.join(tmp, 'gone-before.kubeconfig');
      writeFileSync(kubeconfig, readFileSync(own.kubeconfig));
      await own.close();
      extra.KUBECONFIG = kubeconfig;
    } else {
      const noexec = path.join(tmp, 'kubectl-noexec');
      writeFileSync(noexec, '#!/bin/sh\nexit 0\n', { mode: 0o644 });
      const cfg = path.join(tmp, `kubectl-${how}.yaml`);
      writeFileSync(cfg, `${readFileSync(cfgFile, 'utf8')}paths:\n  kubectl: ${how === 'missing' ? '/nonexistent/kubectl' : noexec}\n`);
      extra.SNEAKPEEK_CONFIG = cfg;
    }
    const mark = kube.events.length;
    const r = await run('get_container_ns', ['-a', 'node-a', '-n', short('a1')], extra);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(want);
    expect(kube.events.length).toBe(mark);
  });

  it('a watch that ends at once, every time (a proxy that cuts streams): started again at most once a second, not in a busy loop', async () => {
    // the real kubectl for everything but the watch, which ends at once with nothing, as kubectl does when the server ends it
    const calls = path.join(tmp, 'watch-calls');
    const wrapper = path.join(tmp, 'kubectl-cut-watch');
    writeFileSync(wrapper, `#!/bin/sh\ncase " $* " in *" --watch "*) echo x >> ${shQuote(calls)}; exit 0;; esac\nexec kubectl "$@"\n`, { mode: 0o755 });
    const cfg = path.join(tmp, 'kubectl-cut-watch.yaml');
    writeFileSync(cfg, `${readFileSync(cfgFile, 'utf8').replace('startTimeout: 5', 'startTimeout: 3')}paths:\n  kubectl: ${wrapper}\n`);
    rmSync(calls, { force: true });
    const mark = kube.events.length;
    const r = await run('get_container_ns', ['-a', 'node-a', '-n', short('a1')], { SNEAKPEEK_CONFIG: cfg });
    expect([r.code, r.stderr]).toEqual([1, expect.stringMatching(/^get_container_ns: node-a: pod default\/sneakpeek-[a-z0-9]+-1 not Running after 3s \(kubectl\.startTimeout\): no status yet\n$/)]);
    const watches = readFileSync(calls, 'utf8').split('\n').filter(Boolean).length;
    expect(watches).toBeGreaterThanOrEqual(2);
    expect(watches).toBeLessThanOrEqual(4);
    await allDeleted(mark);
  }, 30_000);

  it('Ctrl-C while the API server hangs (accepts, never answers): the run still ends within seconds, naming the pod it could not delete', async () => {
    const sockets = new Set<net.Socket>();
    const hung = net.createServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
    });
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    try {
      const kubeconfig = path.join(tmp, 'hung.kubeconfig');
      writeFileSync(kubeconfig, readFileSync(kube.kubeconfig, 'utf8').replace(/http:\/\/127\.0\.0\.1:\d+/, `http://127.0.0.1:${(hung.address() as net.AddressInfo).port}`));
      const child = spawn(path.join(ROOT, 'bin', 'get_container_ns'), ['-a', 'node-a', '-n', short('a1')], {
        env: { ...process.env, ...env(), KUBECONFIG: kubeconfig },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const err: Buffer[] = [];
      child.stderr!.on('data', (c: Buffer) => err.push(c));
      const done = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
      await until(() => sockets.size > 0, 15_000, 'kubectl connecting');
      await new Promise((r) => setTimeout(r, 300));
      const t0 = Date.now();
      child.kill('SIGINT');
      const code = await Promise.race([done, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 25_000))]);
      if (code === 'hung') child.kill('SIGKILL');
      expect(code).toBe(130);
      expect((Date.now() - t0) / 1000).toBeLessThan(15);
      const lines = Buffer.concat(err).toString().split('\n').filter(Boolean);
      expect(lines).toEqual([
        expect.stringMatching(/^sneakpeek: warning: node-a: pod default\/sneakpeek-[a-z0-9]+-1 not deleted: timed out after 10s \(sneakpeek --cleanup removes it\)$/),
        'get_container_ns: node-a: interrupted (SIGINT)',
      ]);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => hung.close(r));
    }
  }, 60_000);

  it('a kubectl whose watch prints something that is not JSON: the node fails with one line saying so; the pod is deleted', async () => {
    const wrapper = path.join(tmp, 'kubectl-garbage-watch');
    writeFileSync(wrapper, `#!/bin/sh\ncase " $* " in *" --watch "*) printf '{\\n  garbage\\n}\\n'; exit 0;; esac\nexec kubectl "$@"\n`, { mode: 0o755 });
    const cfg = path.join(tmp, 'kubectl-garbage-watch.yaml');
    writeFileSync(cfg, `${readFileSync(cfgFile, 'utf8')}paths:\n  kubectl: ${wrapper}\n`);
    const mark = kube.events.length;
    const r = await run('get_container_ns', ['-a', 'node-a', '-n', short('a1')], { SNEAKPEEK_CONFIG: cfg });
    expect([r.code, r.stderr]).toEqual([1, expect.stringMatching(/^get_container_ns: node-a: cannot read pod default\/sneakpeek-[a-z0-9]+-1: kubectl did not answer JSON \(.*JSON at position \d+.*\)\n$/)]);
    await allDeleted(mark);
  }, 30_000);

  it('a kubectl (wrapper) that reads its stdin gets an empty one that ends: get, watch and delete do not wait for input that never comes', async () => {
    const wrapper = path.join(tmp, 'kubectl-reads-stdin');
    writeFileSync(wrapper, `#!/bin/sh\ncase "$1" in create|exec) exec kubectl "$@";; esac\ncat >/dev/null\nexec kubectl "$@" </dev/null\n`, { mode: 0o755 });
    const cfg = path.join(tmp, 'kubectl-reads-stdin.yaml');
    writeFileSync(cfg, `${readFileSync(cfgFile, 'utf8')}paths:\n  kubectl: ${wrapper}\n`);
    const mark = kube.events.length;
    const t0 = Date.now();
    const r = await run('get_container_ns', ['-a', 'node-b', '-n', short('b1')], { SNEAKPEEK_CONFIG: cfg });
    expect([r.code, r.stdout, r.stderr]).toEqual([0, `${mntIno(C('b1'))}\n`, '']);
    const c = await run('sneakpeek', ['--cleanup', '--dry-run'], { SNEAKPEEK_CONFIG: cfg });
    expect([c.code, c.stderr]).toEqual([0, '0 of 0 pod(s) to delete (namespace default)\n']);
    expect((Date.now() - t0) / 1000).toBeLessThan(20);
    await allDeleted(mark);
  }, 90_000);

  it('--cleanup takes only --namespace / -A / --dry-run', async () => {
    const r = await run('sneakpeek', ['--cleanup', '-t', 'files']);
    expect([r.code, r.stderr]).toEqual([2, 'sneakpeek: --cleanup takes only --namespace NS or -A (and --dry-run), not --type (see sneakpeek --help)\n']);
  });
});

describe.skipIf(skip)('transport kubectl: -t files memory stays flat (records streamed with backpressure)', () => {
  const BIG = 30_000;
  beforeAll(() => {
    // BIG new files, written straight into the container's merged dir (its overlay mount), under
    // long directory names: a ~20 MB listing, far more than loopback sockets and pipes hold (~5 MB)
    ids.big = runContainer(C('big'), ensureBusyboxImage());
    const merged = docker('inspect', '-f', '{{.GraphDriver.Data.MergedDir}}', C('big'));
    const deep = ['d', 'e', 'f'].map((ch) => ch.repeat(200)).join('/');
    for (let i = 0; i < BIG; i++) {
      const d = path.join(merged, 'srv', deep, String(Math.floor(i / 1000)));
      if (i % 1000 === 0) mkdirSync(d, { recursive: true });
      writeFileSync(path.join(d, `${i}.dat`), '');
    }
  }, 180_000);

  /**
   * sneakpeek -t files run in-process (a probe under tsx), writing to a stdout that takes
   * nothing until `go` exists, then reads slowly: its peak retained memory (MB: heap and Buffers
   * after a full GC, test/helpers/retained.mjs — free of the GC-timing wobble of RSS) and line count.
   */
  function probe(node: string, name: string, go: string): { done: Promise<{ mb: number; lines: number }> } {
    const file = path.join(tmp, 'rss-probe.mts');
    writeFileSync(
      file,
      `import { existsSync } from 'node:fs';
import { main } from ${JSON.stringify(path.join(ROOT, 'scripts/sneakpeek.ts'))};
import { Writable } from 'node:stream';
let lines = 0, n = 0;
const go = ${JSON.stringify(go)};
const when = (cb) => (existsSync(go) ? (++n % 64 ? cb() : setTimeout(cb, 2)) : setTimeout(() => when(cb), 50));
const sink = new Writable({ highWaterMark: 1 << 16, write(c, _e, cb) { for (const b of c) if (b === 10) lines++; when(cb); } });
const code = await main(['-t', 'files', '--chroot', ...${JSON.stringify(node ? ['-a', node] : [])}, '-n', ${JSON.stringify(name)}], { stdout: sink, stderr: process.stderr, stdin: process.stdin, env: process.env });
await new Promise((r) => sink.end(r));
process.stdout.write(JSON.stringify({ lines, code }));`,
    );
    const done = new Promise<{ mb: number; lines: number }>((resolve) => {
      const retained = `${file}.${Math.random().toString(36).slice(2)}.retained`;
      const child = spawn(TSX, [file], {
        env: { ...process.env, ...env(), SP_RETAINED_OUT: retained, NODE_OPTIONS: `--import=${path.join(ROOT, 'test/helpers/retained.mjs')}` },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => err.push(c));
      child.on('close', () => {
        expect(Buffer.concat(err).toString()).toBe('');
        const o = JSON.parse(Buffer.concat(out).toString()) as { lines: number; code: number };
        expect(o.code).toBe(0);
        const peaks = readFileSync(retained, 'utf8').split('\n').filter(Boolean).map(Number);
        rmSync(retained);
        resolve({ lines: o.lines, mb: Math.max(...peaks) / 1048576 });
      });
    });
    return { done };
  }

  it('| head -1 on a long listing: quiet exit 0, and the pod is deleted on the way out', async () => {
    const mark = kube.events.length;
    const cmd = `${shQuote(path.join(ROOT, 'bin/sneakpeek'))} -t files --chroot -a node-a -n ${short('big')} | head -1; echo "exit \${PIPESTATUS[0]}" >&2`;
    const r = await new Promise<{ stdout: string; stderr: string }>((resolve) => {
      const child = spawn('bash', ['-c', cmd], { env: { ...process.env, ...env() }, stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => err.push(c));
      child.on('close', () => resolve({ stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
    });
    expect(r.stdout).toMatch(/^[ACD] \/\S*\n$/);
    expect(r.stderr).toBe('exit 0\n');
    const ev = await allDeleted(mark);
    const x = kube.execs.find((e) => e.pod === creates(ev)[0]!.name)!;
    expect(x.stdoutBytes).toBeLessThan(18 << 20); // it did not run to the end of its ~19 MB
  }, 60_000);

  it(`${BIG} added files through a pod: a reader that stops stops the node; memory as over plain sh; every line docker diff has`, async () => {
    const mark = kube.events.length;
    const go = path.join(tmp, 'go');
    rmSync(go, { force: true });
    const big = probe('node-a', short('big'), go);
    // the reader takes nothing: once output flows, it stops where the buffers between the node
    // and the reader are full (pipes, loopback sockets), far short of the whole listing
    const x = await until(() => kube.execs.find((e) => e.stdoutBytes > 1 << 20 && creates(kube.events.slice(mark)).some((c) => c.name === e.pod)), 60_000, 'output flowing');
    let held = -1;
    while (held !== x.stdoutBytes) {
      held = x.stdoutBytes;
      await new Promise((r) => setTimeout(r, 1500));
    }
    expect(x.exitCode).toBeUndefined(); // blocked in a write, not finished
    writeFileSync(go, '');
    const b = await big.done;
    expect(x.exitCode).toBe(0);
    expect(held).toBeLessThan(x.stdoutBytes / 2);
    expect(b.lines).toBe(dockerDiffSorted(C('big')).length);
    expect(b.lines).toBeGreaterThan(BIG);
    // the same container and the same stalled reader over plain sh on this host (no -a): the
    // kubectl transport streams the same way, so it peaks no higher
    rmSync(go);
    const lp = probe('', short('big'), go);
    await new Promise((r) => setTimeout(r, 3000));
    writeFileSync(go, '');
    const local = await lp.done;
    const small = await probe('node-a', short('a1'), go).done;
    console.log(
      `transport kubectl, -t files of ${b.lines} lines: with the reader stopped the node had written ${(held / 1048576).toFixed(1)} of ${(x.stdoutBytes / 1048576).toFixed(1)} MB; ` +
        `peak retained memory ${b.mb.toFixed(1)} MB (plain sh: ${local.mb.toFixed(1)} MB; a 7-line container through a pod: ${small.mb.toFixed(1)} MB)`,
    );
    // the transport holds no more than plain sh: a few chunks in flight, never the ~20 MB listing
    expect(b.mb).toBeLessThan(local.mb + 5);
    expect(b.mb).toBeLessThan(small.mb + 5);
    expect(perNode(await allDeleted(mark))).toEqual({ 'node-a': 2 });
  }, 180_000);
});
