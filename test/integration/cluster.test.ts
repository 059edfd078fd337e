// The cluster with real parts: the real kubectl against recorded API responses whose
// containerIDs are real running docker containers, and a real sshd serving "nodes"
// 127.0.0.2, 127.0.0.3, 127.0.0.4 on loopback. Sessions are counted in sshd's log.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Readable, Writable } from 'node:stream';
import type { IO } from '../../lib/io/entry.ts';
import { shQuote } from '../../lib/quote.ts';
import { main as get_all_containers } from '../../scripts/get_all_containers.ts';
import { main as get_container_ns } from '../../scripts/get_container_ns.ts';
import { main as sneakpeek } from '../../scripts/sneakpeek.ts';
import { ROOT, runToolAsync, sortedLines, type Run } from '../helpers/cli.ts';
import { cleanupContainers, docker, dockerDiffSorted, dockerTry, ensureBusyboxImage, exec, runContainer } from '../helpers/docker.ts';
import { pod, startKube, type KubeServer } from '../helpers/kube.ts';
import { commandWorks, dockerUp, isRoot, missing } from '../helpers/prereq.ts';
import { silentListener, sshdInstalled, startSshd, type Sshd } from '../helpers/sshd.ts';

const skip = missing({
  root: isRoot,
  docker: dockerUp,
  'sshd (/usr/sbin/sshd, openssh-server)': sshdInstalled,
  'ssh (openssh-client)': () => commandWorks('ssh', ['-V']),
  'ssh-keygen (openssh-client)': () => commandWorks('sh', ['-c', 'command -v ssh-keygen']),
  kubectl: () => commandWorks('kubectl', ['version', '--client']),
  'sudo and the sp-nopw test user (.ci/provision)': () => commandWorks('sudo', ['-V']) && commandWorks('id', ['sp-nopw']),
});

const execFileAsync = promisify(execFile);
const CONNECT_TIMEOUT = 3;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'sp-cluster-'));
const canary = path.join(tmp, 'canary');
let sshd: Sshd;
let kube: KubeServer;
let cfgFile: string;
const ids: Record<string, string> = {};
let basePods: Record<string, unknown>[];

const run = (tool: string, args: string[], env: Record<string, string> = {}, input?: string): Promise<Run> =>
  runToolAsync(tool, args, { env: { ...kube.env, SNEAKPEEK_CONFIG: cfgFile, ...env }, input, timeoutMs: 60_000 });

const MAINS: Record<string, (argv: string[], io: IO) => Promise<number>> = { get_all_containers, get_container_ns, sneakpeek };
/** The same tool in-process (main(argv, io)): for the many refusals, where a tsx start per case would dominate. */
async function runIn(tool: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const sink = (into: Buffer[]) => new Writable({ write: (c, _e, cb) => (into.push(Buffer.from(c)), cb()) });
  const io: IO = { stdout: sink(out), stderr: sink(err), stdin: Readable.from([]), env: { ...process.env, ...kube.env, SNEAKPEEK_CONFIG: cfgFile, ...env } };
  const code = await MAINS[tool]!(args, io);
  const raw = Buffer.concat(out);
  return { code, stdout: raw.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), raw };
}
const mntIno = (name: string) => String(statSync(`/proc/${docker('inspect', '-f', '{{.State.Pid}}', name)}/ns/mnt`).ino);
const mergedDir = (name: string) => docker('inspect', '-f', '{{.GraphDriver.Data.MergedDir}}', name);
const lastLine = (s: string) => s.trimEnd().split('\n').pop();
const sessions = (mark: number) => Object.fromEntries(sshd.sessions(mark));
/** Container names unique to this process: runContainer does `docker rm -f NAME` first. */
const C = (n: string) => `sp-cluster-${n}-${process.pid}`;

/** A crictl stand-in that answers `inspect` from docker, in the shape of recorded containerd output. */
function crictlStub(): string {
  const recorded = readFileSync(path.join(ROOT, 'test/fixtures/crictl/containerd-inspect.json'), 'utf8');
  const template = path.join(tmp, 'crictl-inspect.json');
  writeFileSync(template, recorded);
  const bin = path.join(tmp, 'crictl');
  writeFileSync(
    bin,
    `#!/bin/sh
# crictl stub for tests: only \`inspect\`; facts from docker, JSON shaped like containerd's crictl.
[ "$1" = inspect ] || { echo "crictl stub: only inspect" >&2; exit 2; }
for want; do :; done
if ! out=$(docker inspect --type container --format '{{.Id}} {{.State.Pid}} {{.State.Running}}' -- "$want" 2>/dev/null); then
  echo "E1101 getting the status of the container \\"$want\\": rpc error: code = NotFound desc = an error occurred when try to find container \\"$want\\": not found" >&2
  exit 1
fi
set -- $out
state=CONTAINER_EXITED; [ "$3" = true ] && state=CONTAINER_RUNNING
sed -e "s/5b3f2c8e9a1d4f6b7c0e2a4d6f8b0c2e4a6d8f0b2c4e6a8d0f2b4c6e8a0d2f4b/$1/" -e "s/\\"pid\\": 51873/\\"pid\\": $2/" -e "s/CONTAINER_RUNNING/$state/" ${shQuote(template)}
`,
  );
  chmodSync(bin, 0o755);
  return bin;
}

beforeAll(async () => {
  if (skip) return;
  const image = ensureBusyboxImage();
  const start = (name: string, changes: string) => {
    ids[name] = runContainer(name, image);
    exec(name, changes);
  };
  start(C('a1'), 'echo hi > /etc/motd; rm /data/keep.txt; mkdir -p /newdir/x; touch /newdir/x/f');
  start(C('a2'), 'rm -r /data/old; echo x > /tmp/new');
  start(C('b1'), 'chmod 700 /etc/app; echo 2 >> /etc/app/app.conf');
  start(C('c1'), 'touch /etc/crictl-was-here; rm /etc/motd');
  start(C('d1'), 'touch /tmp/d1');
  // Node 127.0.0.4 lets the key in, but its login has no passwordless sudo.
  sshd = await startSshd({
    addresses: ['127.0.0.2', '127.0.0.3', '127.0.0.4'],
    sshdConfig: "Match LocalAddress 127.0.0.4\n  ForceCommand su -s /bin/sh sp-nopw -c 'sudo -n sh -s'\n",
  });
  cfgFile = sshd.writeConfig({ ssh: { connectTimeout: CONNECT_TIMEOUT }, paths: { crictl: crictlStub() } });
  basePods = [
    pod({ name: 'web-0', namespace: 'shop', hostIP: '127.0.0.2', labels: { app: 'web' }, containers: [{ name: 'app', id: ids[C('a1')] }, { name: 'side', id: ids[C('a2')] }] }),
    pod({ name: 'db-0', namespace: 'data', hostIP: '127.0.0.3', labels: { app: 'db' }, containers: [{ name: 'db', id: ids[C('b1')] }] }),
    pod({ name: 'cache-0', namespace: 'data', hostIP: '127.0.0.3', labels: { app: 'cache' }, containers: [{ name: 'cache', id: ids[C('c1')], runtime: 'containerd' }] }),
    // Listed by neither rule: pending (no hostIP), and a container that is not ready.
    pod({ name: 'pending-0', namespace: 'shop', containers: [{ name: 'app' }] }),
    pod({ name: 'warming-0', namespace: 'shop', hostIP: '127.0.0.2', containers: [{ name: 'app', id: ids[C('d1')], ready: false, started: false }] }),
  ];
  kube = await startKube({ pods: basePods, namespace: 'shop' });
}, 180_000);

afterAll(async () => {
  await kube?.close();
  await sshd?.stop();
  cleanupContainers();
  rmSync(tmp, { recursive: true, force: true });
});

const short = (name: string) => ids[name]!.slice(0, 12);

describe.skipIf(skip)('get_all_containers with the real kubectl', () => {
  it('-A: NODE_IP,CONTAINER_ID for ready and started containers, one per container', async () => {
    const r = await run('get_all_containers', ['-A']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean)).toEqual([
      `127.0.0.2,${short(C('a1'))}`,
      `127.0.0.2,${short(C('a2'))}`,
      `127.0.0.3,${short(C('b1'))}`,
      `127.0.0.3,${short(C('c1'))}`,
    ]);
    expect(kube.requests).toContain('/api/v1/pods?limit=500');
  });

  it.each([
    [[], ['a1', 'a2'], '/api/v1/namespaces/shop/pods?limit=500'],
    [['--namespace', 'data'], ['b1', 'c1'], '/api/v1/namespaces/data/pods?limit=500'],
    [['-A', '-l', 'app=db'], ['b1'], '/api/v1/pods?labelSelector=app%3Ddb&limit=500'],
    [['-A', '-e', 'web-0', '-e', 'data/cache-0'], ['b1'], '/api/v1/pods?limit=500'],
    [['--namespace', 'shop', '--running'], ['a1', 'a2', 'd1'], '/api/v1/namespaces/shop/pods?limit=500'],
  ])('%j → %j', async (args, want, request) => {
    const before = kube.requests.length;
    const r = await run('get_all_containers', args);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean).map((l) => l.split(',')[1])).toEqual(want.map((n) => short(C(n))));
    expect(kube.requests.slice(before)).toContain(request);
  });

  it('--json: pod, namespace, container, node, nodeIP, runtime, full id, engine', async () => {
    const r = await run('get_all_containers', ['--namespace', 'data', '--json']);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l))).toEqual([
      { pod: 'db-0', namespace: 'data', container: 'db', node: 'node-127-0-0-3', nodeIP: '127.0.0.3', runtime: 'docker', id: ids[C('b1')], engine: 'docker' },
      { pod: 'cache-0', namespace: 'data', container: 'cache', node: 'node-127-0-0-3', nodeIP: '127.0.0.3', runtime: 'containerd', id: ids[C('c1')], engine: 'containerd' },
    ]);
  });

  it('--pods-file - reads saved kubectl output, no API call', async () => {
    // Async: the fake API answers from this very process.
    const saved = (await execFileAsync('kubectl', ['get', 'pods', '-A', '-o', 'json'], { env: { ...process.env, ...kube.env } })).stdout;
    const before = kube.requests.length;
    const r = await run('get_all_containers', ['--pods-file', '-', '-v'], {}, saved);
    expect(kube.requests.length).toBe(before);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(4);
    expect(r.stderr).toContain('skipped pod shop/pending-0: no hostIP (pending or not scheduled)');
    expect(r.stderr).toContain('skipped pod shop/warming-0 container app: not ready');
  });

  it('kubectl failing is one clear line, exit 1', async () => {
    // A server on port 1, where nothing listens: refused at once, whatever runs on this host.
    const dead = path.join(tmp, 'dead-kubeconfig');
    writeFileSync(
      dead,
      'apiVersion: v1\nkind: Config\nclusters:\n- name: dead\n  cluster: {server: "http://127.0.0.1:1"}\n' +
        'contexts:\n- name: dead\n  context: {cluster: dead, user: dead}\ncurrent-context: dead\nusers:\n- name: dead\n  user: {}\n',
    );
    const r = await run('get_all_containers', ['-A'], { KUBECONFIG: dead });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^get_all_containers: kubectl get pods failed: .*127\.0\.0\.1:1\b.*refused.*\n$/);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  });
});

describe.skipIf(skip)('get_all_containers → get_container_ns over ssh', () => {
  it('gives the inode stat -L gives locally, one session per call', async () => {
    const list = (await run('get_all_containers', ['-A'])).stdout.split('\n').filter(Boolean);
    const byShort = Object.fromEntries(Object.keys(ids).map((n) => [short(n), n]));
    expect(list).toHaveLength(4);
    for (const line of list) {
      const [node, id] = line.split(',') as [string, string];
      const mark = sshd.mark();
      const r = await run('get_container_ns', ['-a', node, '-n', id]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`${mntIno(byShort[id]!)}\n`);
      expect(sshd.sessions(mark).get(node)).toBe(1);
      expect([...sshd.sessions(mark).values()].reduce((a, b) => a + b)).toBe(1);
    }
  });

  it.each(['docker', 'crictl'])('a stopped container (State.Pid 0), -c %s: exit 1, one line, never an inode', async (engine) => {
    const name = C('stopped');
    if (dockerTry('inspect', name).status !== 0) {
      runContainer(name, ensureBusyboxImage());
      docker('stop', '-t', '0', name);
    }
    expect(docker('inspect', '-f', '{{.State.Running}} {{.State.Pid}}', name)).toBe('false 0');
    const id = docker('inspect', '-f', '{{.Id}}', name).slice(0, 12);
    const mark = sshd.mark();
    const r = await run('get_container_ns', ['-a', '127.0.0.2', '-n', id, '-c', engine]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`^get_container_ns: 127\\.0\\.0\\.2: ${id}: container ${id} (is not running|has no main process)[^\\n]*\\n$`));
    expect(sessions(mark)).toEqual({ '127.0.0.2': 1, '127.0.0.3': 0, '127.0.0.4': 0 });
  });

  it('-c crictl (containerd\'s road: .info.pid) gives the same inode', async () => {
    const r = await run('get_container_ns', ['-a', '127.0.0.3', '-n', ids[C('c1')]!, '-c', 'crictl', '-v']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${mntIno(C('c1'))}\n`);
    expect(r.stderr).toMatch(/id [0-9a-f]{64}, pid \d+/);
  });

  it('--dry-run prints the node script (the name quoted as data) and opens no session', async () => {
    const mark = sshd.mark();
    const r = await runIn('get_container_ns', ['-a', '127.0.0.3', '-n', C('b1'), '-c', 'crictl', '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^# node: 127\.0\.0\.3\n/);
    expect(r.stdout).toContain(`\nsp_ns 0 crictl ${C('b1')}\n`);
    expect(r.stdout).toContain(`\nSP_CRICTL=${shQuote(path.join(tmp, 'crictl'))}\n`);
    expect(sessions(mark)).toEqual({ '127.0.0.2': 0, '127.0.0.3': 0, '127.0.0.4': 0 });
  });

  it('a container that is not there: one line, exit 1, never a number', async () => {
    const r = await run('get_container_ns', ['-a', '127.0.0.2', '-n', C('nosuch')]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`^get_container_ns: 127\\.0\\.0\\.2: ${C('nosuch')}: .*No such container`));
  });

  it('sudo that would ask for a password fails at once with sudo\'s words (-u, sudo: true)', async () => {
    const t0 = Date.now();
    const r = await run('get_container_ns', ['-a', '127.0.0.2', '-u', 'sp-nopw', '-n', C('a1')], { SNEAKPEEK_SUDO: 'true' });
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^get_container_ns: 127\.0\.0\.2: sudo: a password is required\n$/);
  });
});

describe.skipIf(skip)('sneakpeek cluster-wide -t files', () => {
  it('--chroot: per container exactly docker diff; one session per node; engines follow the runtime', async () => {
    const mark = sshd.mark();
    const r = await run('sneakpeek', ['-t', 'files', '--chroot', '-A']);
    expect(r.code).toBe(0);
    expect(lastLine(r.stderr)).toBe('4 ok, 0 failed');
    const got = new Map<string, string[]>();
    for (const line of r.stdout.split('\n').filter(Boolean)) {
      const sp = line.indexOf(' ');
      const label = line.slice(0, sp);
      got.set(label, [...(got.get(label) ?? []), line.slice(sp + 1)]);
    }
    const want: [string, string][] = [
      ['127.0.0.2', C('a1')],
      ['127.0.0.2', C('a2')],
      ['127.0.0.3', C('b1')],
      ['127.0.0.3', C('c1')], // containerd:// → containerd: crictl on the node (mountinfo road)
    ];
    expect([...got.keys()].sort()).toEqual(want.map(([n, c]) => `${n},${short(c)}`).sort());
    for (const [node, c] of want) expect(sortedLines((got.get(`${node},${short(c)}`) ?? []).join('\n'))).toEqual(dockerDiffSorted(c));
    expect(sessions(mark)).toEqual({ '127.0.0.2': 1, '127.0.0.3': 1, '127.0.0.4': 0 });
  });

  it('--json adds pod, namespace, container, node', async () => {
    const r = await run('sneakpeek', ['-t', 'files', '--chroot', '--json', '--namespace', 'data', '-l', 'app=db']);
    expect(r.code).toBe(0);
    const objs = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    expect(objs.map((o) => `${o.kind} ${o.path}`).sort()).toEqual(dockerDiffSorted(C('b1')));
    expect(objs[0]).toMatchObject({ pod: 'db-0', namespace: 'data', container: 'db', node: 'node-127-0-0-3', nodeIP: '127.0.0.3', id: ids[C('b1')] });
  });

  it('-t merged_dir cluster-wide: label and MergedDir, one session per node', async () => {
    const mark = sshd.mark();
    const r = await run('sneakpeek', ['-t', 'merged_dir', '--namespace', 'shop']);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(
      [C('a1'), C('a2')].map((c) => `127.0.0.2,${short(c)} ${mergedDir(c)}`).sort(),
    );
    expect(sessions(mark)).toEqual({ '127.0.0.2': 1, '127.0.0.3': 0, '127.0.0.4': 0 });
  });

  it('-a NODE -n CONTAINER, -t files --chroot: exactly docker diff, one session on that node', async () => {
    const mark = sshd.mark();
    const r = await run('sneakpeek', ['-t', 'files', '--chroot', '-a', '127.0.0.3', '-n', short(C('b1'))]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(sortedLines(r.stdout)).toEqual(dockerDiffSorted(C('b1')));
    expect(sessions(mark)).toEqual({ '127.0.0.2': 0, '127.0.0.3': 1, '127.0.0.4': 0 });
  });

  it('-a NODE -n CONTAINER, -t merged_dir: exactly the MergedDir, one session on that node', async () => {
    const mark = sshd.mark();
    const r = await run('sneakpeek', ['-t', 'merged_dir', '-a', '127.0.0.3', '-n', short(C('b1'))]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${mergedDir(C('b1'))}\n`);
    expect(sessions(mark)).toEqual({ '127.0.0.2': 0, '127.0.0.3': 1, '127.0.0.4': 0 });
  });

  it('-a NODE without -n: that node\'s containers only', async () => {
    const mark = sshd.mark();
    const r = await run('sneakpeek', ['-t', 'files', '--chroot', '-A', '-a', '127.0.0.3']);
    expect(r.code).toBe(0);
    expect(new Set(r.stdout.split('\n').filter(Boolean).map((l) => l.split(' ')[0]))).toEqual(new Set([`127.0.0.3,${short(C('b1'))}`, `127.0.0.3,${short(C('c1'))}`]));
    expect(sessions(mark)).toEqual({ '127.0.0.2': 0, '127.0.0.3': 1, '127.0.0.4': 0 });
  });

  it('--dry-run prints one script per node and opens no session', async () => {
    const mark = sshd.mark();
    const r = await run('sneakpeek', ['-t', 'files', '-A', '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stdout.match(/^# node: .*$/gm)).toEqual(['# node: 127.0.0.2', '# node: 127.0.0.3']);
    expect(r.stdout).toContain(`\nsp_list 3 containerd ${ids[C('c1')]} 0\n`);
    expect(sessions(mark)).toEqual({ '127.0.0.2': 0, '127.0.0.3': 0, '127.0.0.4': 0 });
  });

  it('faults: no sshd, a hung sshd, sudo asking for a password, a container gone after discovery → the rest complete', async () => {
    const hung = await silentListener('127.0.0.6', sshd.port);
    runContainer(C('doomed'), ensureBusyboxImage());
    const doomed = docker('inspect', '-f', '{{.Id}}', C('doomed'));
    kube.setPods([
      ...basePods,
      pod({ name: 'doomed-0', namespace: 'shop', hostIP: '127.0.0.2', containers: [{ name: 'app', id: doomed }] }),
      pod({ name: 'nopw-0', namespace: 'shop', hostIP: '127.0.0.4', containers: [{ name: 'app', id: ids[C('d1')] }] }),
      pod({ name: 'dead-0', namespace: 'shop', hostIP: '127.0.0.9', containers: [{ name: 'app', id: 'd'.repeat(64) }] }),
      pod({ name: 'hung-0', namespace: 'shop', hostIP: '127.0.0.6', containers: [{ name: 'app', id: 'e'.repeat(64) }] }),
    ]);
    // The API answers with the container still listed; by the time the node looks, it has exited.
    kube.onPodList(() => dockerTry('rm', '-f', C('doomed')));
    const mark = sshd.mark();
    const t0 = Date.now();
    try {
      const r = await run('sneakpeek', ['-t', 'files', '--chroot', '-A']);
      const took = (Date.now() - t0) / 1000;
      expect(took).toBeLessThan(CONNECT_TIMEOUT + 8);
      expect(r.code).toBe(1);
      expect(lastLine(r.stderr)).toBe('4 ok, 4 failed');
      expect(r.stderr).toContain(`sneakpeek: 127.0.0.2,${doomed.slice(0, 12)}: Error response from daemon: No such container: ${doomed}`);
      expect(r.stderr).toContain(`sneakpeek: 127.0.0.4,${short(C('d1'))}: 127.0.0.4: sudo: a password is required`);
      expect(r.stderr).toMatch(/sneakpeek: 127\.0\.0\.9,dddddddddddd: 127\.0\.0\.9: ssh: connect to host 127\.0\.0\.9 port \d+: Connection refused/);
      expect(r.stderr).toMatch(/sneakpeek: 127\.0\.0\.6,eeeeeeeeeeee: 127\.0\.0\.6: .*(timed out|Connection closed|banner exchange)/i);
      for (const c of [C('a1'), C('a2'), C('b1'), C('c1')]) {
        const label = `${c === C('a1') || c === C('a2') ? '127.0.0.2' : '127.0.0.3'},${short(c)}`;
        const mine = r.stdout.split('\n').filter((l) => l.startsWith(`${label} `)).map((l) => l.slice(label.length + 1));
        expect(sortedLines(mine.join('\n'))).toEqual(dockerDiffSorted(c));
      }
      expect(sessions(mark)).toEqual({ '127.0.0.2': 1, '127.0.0.3': 1, '127.0.0.4': 1 });
    } finally {
      kube.setPods(basePods);
      await hung.close();
    }
  });
});

describe.skipIf(skip)('hostile values never run: refused, or quoted into harmless data', () => {
  const payloads = [
    `x;touch ${canary}`,
    `$(touch ${canary})`,
    `\`touch ${canary}\``,
    `x'; touch ${canary}; '`,
    `x"; touch ${canary}; "`,
    `x\ntouch ${canary}`,
    `--rm;touch ${canary}`,
  ];
  const afterEachRun = () => expect(existsSync(canary)).toBe(false);

  it.each(payloads)('container name %j → exit 2, one line', async (p) => {
    for (const tool of ['get_container_ns', 'sneakpeek']) {
      const r = await runIn(tool, [...(tool === 'sneakpeek' ? ['-t', 'files'] : []), '-a', '127.0.0.2', `--name=${p}`]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/invalid container name/);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    }
    afterEachRun();
  });

  it.each(payloads)('node address %j → exit 2', async (p) => {
    const r = await runIn('get_container_ns', [`--address=${p}`, '-n', C('a1')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/invalid node address/);
    afterEachRun();
  });

  it.each(payloads)('-e %j, --namespace and --selector → exit 2', async (p) => {
    for (const args of [[`--exclude=${p}`], [`--namespace=${p}`], [`--selector=${p}`]]) {
      for (const tool of ['get_all_containers', 'sneakpeek']) {
        const r = await runIn(tool, [...(tool === 'sneakpeek' ? ['-t', 'files'] : []), ...args]);
        expect(r.code).toBe(2);
        expect(r.stderr).toMatch(/invalid (pod name|namespace|label selector)/);
      }
    }
    afterEachRun();
  });

  it('hostile pod names, container names, ids and hostIPs in the API: refused, the rest go on', async () => {
    const bad = payloads[0]!;
    kube.setPods([
      ...basePods.slice(0, 2),
      pod({ name: bad, namespace: 'shop', hostIP: '127.0.0.2', containers: [{ name: 'app', id: 'a'.repeat(64) }] }),
      pod({ name: 'evil-1', namespace: 'shop', hostIP: `127.0.0.2;touch ${canary}`, containers: [{ name: 'app', id: 'b'.repeat(64) }] }),
      pod({ name: 'evil-2', namespace: 'shop', hostIP: `-oProxyCommand=touch ${canary}`, containers: [{ name: 'app', id: 'c'.repeat(64) }] }),
      pod({ name: 'evil-3', namespace: 'shop', hostIP: '127.0.0.2', containers: [{ name: 'app', id: `abcdef123456$(touch ${canary})` }] }),
      pod({ name: 'evil-4', namespace: 'shop', hostIP: '127.0.0.2', containers: [{ name: `a\`touch ${canary}\``, id: 'e'.repeat(64) }] }),
    ]);
    try {
      const r = await run('sneakpeek', ['-t', 'files', '--chroot', '-A']);
      expect(r.code).toBe(1);
      expect(lastLine(r.stderr)).toBe('3 ok, 5 failed');
      expect(r.stderr).toMatch(/invalid pod or namespace name/);
      expect(r.stderr.match(/invalid hostIP/g)).toHaveLength(2);
      expect(r.stderr).toMatch(/invalid containerID/);
      expect(r.stderr).toMatch(/invalid container name/);
      const g = await run('get_all_containers', ['-A']);
      expect(g.code).toBe(1);
      expect(g.stdout.split('\n').filter(Boolean)).toHaveLength(3);
    } finally {
      kube.setPods(basePods);
    }
    afterEachRun();
  });

  it('hostile config values: paths are quoted data on the node, a user or option that cannot be valid is refused', async () => {
    const cases: [Record<string, unknown>, number, RegExp][] = [
      [{ paths: { docker: `docker;touch ${canary}` } }, 1, /not found/],
      [{ paths: { docker: `$(touch ${canary})` } }, 1, /not found/],
      [{ paths: { kubectl: `kubectl;touch ${canary}` } }, 1, /not found/],
      [{ ssh: { user: `root;touch ${canary}` } }, 2, /invalid ssh user/],
      [{ ssh: { options: [`-oProxyCommand=touch ${canary}`] } }, 2, /ssh.options entry .* is not Name=value/],
      [{ ssh: { identityFile: `$(touch ${canary})` } }, 1, /./],
      [{ engine: `docker;touch ${canary}` }, 2, /'engine' must be one of/],
    ];
    for (const [extra, code, msg] of cases) {
      const file = sshd.writeConfig(extra, 'hostile.yaml');
      const r = await runIn('sneakpeek', ['-t', 'files', '--namespace', 'data', '-l', 'app=db'], { SNEAKPEEK_CONFIG: file });
      expect(r.code, JSON.stringify(extra)).toBe(code);
      expect(r.stderr, JSON.stringify(extra)).toMatch(msg);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    const env = await runIn('get_container_ns', ['-a', '127.0.0.2', '-n', C('a1')], { SNEAKPEEK_SSH_USER: `$(touch ${canary})` });
    expect(env.code).toBe(2);
    expect(env.stderr).toMatch(/invalid ssh user/);
    afterEachRun();
  });
});
