// Every tool end to end on containerd and podman containers, with real parts: a private
// containerd (ctr) and rootful podman next to docker, our own sshd as two "nodes", a private
// systemd running the units (fswatch, bpftrace), bpftool on the real bpffs.
//
// Cluster-wide, from a pods list that mixes docker:// and containerd:// on the same node:
//   127.0.0.2  docker D1 + containerd K1, no crictl on the node: containerd is read with ctr
//   127.0.0.3  containerd K2, crictl on the node's PATH (the stand-in, answering from the live
//              containerd): containerd is read with crictl — decided on the node, in its session
// -t files, -t merged_dir, -t procmon --backend bpftrace, -t fswatch, --stop, each ONE ssh
// session per node; get_container_ns over ssh; a container removed before the run fails alone.
// Locally, a podman container: -t fswatch and -t procmon with -c podman.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexBytesToInode, hostOrder } from '../../lib/endian.ts';
import { parseFswatchLine, upperDirOfHeader } from '../../lib/fswatch-unit.ts';
import { runToolAsync, sortedLines, type Run } from '../helpers/cli.ts';
import { startContainerd, type Containerd } from '../helpers/containerd.ts';
import { writeCrictlStandin } from '../helpers/crictl-standin.ts';
import * as dk from '../helpers/docker.ts';
import { pod } from '../helpers/kube.ts';
import * as pm from '../helpers/podman.ts';
import { commandWorks, dockerUp, EBPF, isRoot, missing } from '../helpers/prereq.ts';
import { sshdInstalled, startSshd, type Sshd } from '../helpers/sshd.ts';
import { startPrivateSystemd, systemdAvailable, type PrivateSystemd } from '../helpers/systemd.ts';

const TAG = 'runtimes';
const skip = missing({
  root: isRoot,
  'docker engine': dockerUp,
  'podman with the overlay driver (apt-get install podman)': pm.podmanWorks,
  'containerd and ctr (apt-get install docker.io)': () => commandWorks('containerd', ['--version']) && commandWorks('ctr', ['--version']),
  'openssh-server': sshdInstalled,
  ...EBPF,
  'systemd, systemd-analyze, nsenter, unshare': systemdAvailable,
  'fswatch (apt-get install fswatch)': () => existsSync('/usr/bin/fswatch'),
});

const N2 = '127.0.0.2';
const N3 = '127.0.0.3';
const CHANGES = 'echo x > /tmp/x && rm /etc/motd && mkdir -p /var/app && echo 1 > /var/app/state';
let tmp: string;
let ctd: Containerd;
let sd: PrivateSystemd;
let sshd: Sshd;
let cfgFile: string;
let podsFile: string;
const c = { D1: '', K1: '', K2: '', P: '', Pid: '' };
const short = (id: string) => id.slice(0, 12);

const run = (tool: string, args: string[]): Promise<Run> => runToolAsync(tool, args, { env: { SNEAKPEEK_CONFIG: cfgFile }, timeoutMs: 120_000 });
const sneak = (type: string, ...args: string[]) => run('sneakpeek', ['-t', type, '--pods-file', podsFile, ...args]);
const sessions = (mark: number) => Object.fromEntries(sshd.sessions(mark));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mntIno = (pid: number) => String(statSync(`/proc/${pid}/ns/mnt`).ino);
const pidOf = (k: 'D1' | 'K1' | 'K2' | 'P') =>
  k === 'D1' ? Number(dk.docker('inspect', '-f', '{{.State.Pid}}', c.D1)) : k === 'P' ? Number(pm.podman('inspect', '-f', '{{.State.Pid}}', c.P)) : ctd.task(c[k])!.pid;
const logOf = (tool: string, id: string) => path.join(sd.dir, 'log', `${tool}-${short(id)}.log`);
const logLines = (tool: string, id: string) => (existsSync(logOf(tool, id)) ? readFileSync(logOf(tool, id), 'utf8').split('\n').filter(Boolean) : []);
const mapOf = (id: string) => `/sys/fs/bpf/mnt_ns_${short(id)}`;
const keysOf = (file: string): string[] =>
  (JSON.parse(execFileSync('bpftool', ['-j', 'map', 'dump', 'pinned', file], { encoding: 'utf8' })) as { key: string[] }[]).map((e) => hexBytesToInode(e.key, hostOrder()).toString());

async function waitLines(tool: string, id: string, want: RegExp[], ms = 30_000): Promise<string[]> {
  const end = Date.now() + ms;
  for (;;) {
    const all = logLines(tool, id);
    if (want.every((re) => all.some((l) => re.test(l))) || Date.now() > end) return all;
    await sleep(200);
  }
}

/** Write probe files at the container's root until its fswatch log reports one (fswatch batches events). */
async function fswatchSees(id: string, exec: (s: string) => void): Promise<string> {
  const header = (await waitLines('fswatch', id, [/^sneakpeek fswatch: /]))[0] ?? '';
  const upper = upperDirOfHeader(header);
  expect(upper, header).toBeDefined();
  const end = Date.now() + 30_000;
  for (let n = 1; ; n++) {
    const file = `/sp-${TAG}-probe-${n}`;
    exec(`echo ${n} > ${file}`);
    for (const until = Date.now() + 3000; Date.now() < until; await sleep(100)) {
      if (logLines('fswatch', id).some((l) => { const e = parseFswatchLine(l, upper!); return e?.path === file && e.flags.includes('Created'); })) return upper!;
    }
    if (Date.now() > end) throw new Error(`fswatch of ${id} never reported ${file}:\n${logLines('fswatch', id).join('\n')}`);
  }
}

beforeAll(async () => {
  if (skip) return;
  tmp = mkdtempSync(path.join(os.tmpdir(), `sp-${TAG}-e2e-`));
  const image = dk.ensureBusyboxImage();
  // not under /tmp: fswatch@.service has PrivateTmp=yes (sneakpeek refuses such an UpperDir)
  ctd = await startContainerd(`${TAG}-e2e`, { under: '/var/lib' });
  const ref = ctd.importImage(image);
  c.D1 = dk.runContainer(`sp-${TAG}-e2e-d1-${process.pid}`, image);
  dk.exec(c.D1, CHANGES);
  for (const k of ['K1', 'K2'] as const) {
    c[k] = randomBytes(32).toString('hex');
    ctd.run(c[k], ref, 'sleep', '100000');
    ctd.exec(c[k], CHANGES);
  }
  c.P = `sp-${TAG}-e2e-p-${process.pid}`;
  c.Pid = pm.runContainer(c.P, pm.loadImage(image));
  sd = await startPrivateSystemd(TAG);
  // crictl only on 127.0.0.3's PATH (the sessions' systemctl is the private instance's shim)
  const criBin = path.dirname(writeCrictlStandin(path.join(tmp, 'cri-bin'), { backend: 'ctr', address: ctd.address }));
  const pathOf = (extra: string) => `SetEnv PATH=${sd.binDir}:${extra}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;
  sshd = await startSshd({ addresses: [N2, N3], sshdConfig: `Match LocalAddress ${N2}\n  ${pathOf('')}\nMatch LocalAddress ${N3}\n  ${pathOf(`${criBin}:`)}\n` });
  cfgFile = sshd.writeConfig({
    sudo: false,
    concurrency: 1, // both "nodes" are this host: one unit dir
    unitDir: sd.unitDir,
    envDir: path.join(sd.dir, 'env'),
    log: { target: 'file', dir: path.join(sd.dir, 'log') },
    containerd: { address: ctd.address, namespace: ctd.namespace },
  });
  podsFile = path.join(tmp, 'pods.json');
  writeFileSync(podsFile, JSON.stringify({
    kind: 'PodList',
    items: [
      pod({ name: 'web-0', hostIP: N2, containers: [{ name: 'app', id: c.D1 }, { name: 'side', id: c.K1, runtime: 'containerd' }] }),
      pod({ name: 'db-0', hostIP: N3, containers: [{ name: 'db', id: c.K2, runtime: 'containerd' }] }),
    ],
  }));
}, 180_000);

afterAll(async () => {
  await sshd?.stop();
  await sd?.stop();
  dk.cleanupContainers();
  pm.cleanupContainers();
  await ctd?.stop();
  for (const id of [c.D1, c.K1, c.K2, c.Pid]) if (id) rmSync(mapOf(id), { force: true });
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(skip)('cluster-wide: docker:// and containerd:// on one node, crictl on another', () => {
  it('-t files --chroot: each container\'s lines are docker diff\'s; one session per node', async () => {
    const mark = sshd.mark();
    const r = await sneak('files', '--chroot');
    expect(r.stderr).toBe('3 ok, 0 failed\n');
    expect(r.code).toBe(0);
    const want = dk.dockerDiffSorted(c.D1);
    expect(want).toContain('A /var/app/state');
    const of = (node: string, id: string) => sortedLines(r.stdout).filter((l) => l.startsWith(`${node},${short(id)} `)).map((l) => l.slice(l.indexOf(' ') + 1));
    expect(of(N2, c.D1)).toEqual(want);
    expect(of(N2, c.K1)).toEqual(want); // ctr on this node
    expect(of(N3, c.K2)).toEqual(want); // crictl on this node
    expect(sortedLines(r.stdout)).toHaveLength(3 * want.length);
    expect(sessions(mark)).toEqual({ [N2]: 1, [N3]: 1 });
  });

  it('-t merged_dir: the mounted roots (docker MergedDir, containerd task rootfs); get_container_ns = stat -L of the task pid', async () => {
    const mark = sshd.mark();
    const r = await sneak('merged_dir');
    expect(r.stderr).toBe('3 ok, 0 failed\n');
    expect(sortedLines(r.stdout)).toEqual(sortedLines([
      `${N2},${short(c.D1)} ${dk.docker('inspect', '-f', '{{.GraphDriver.Data.MergedDir}}', c.D1)}`,
      `${N2},${short(c.K1)} ${ctd.rootfs(c.K1)}`,
      `${N3},${short(c.K2)} ${ctd.rootfs(c.K2)}`,
    ].join('\n')));
    expect(sessions(mark)).toEqual({ [N2]: 1, [N3]: 1 });
    for (const [node, k] of [[N2, 'K1'], [N3, 'K2']] as const) {
      const n = await run('get_container_ns', ['-a', node, '-n', short(c[k]), '-c', 'containerd', '-v']);
      expect(n.stdout).toBe(`${mntIno(pidOf(k))}\n`);
      expect(n.stderr).toBe(`get_container_ns: ${node}: ${short(c[k])}: id ${c[k]}, pid ${pidOf(k)}\n`);
    }
  });

  it('-t procmon --backend bpftrace: maps hold each task\'s inode, execs in the containerd containers are traced; --stop', async () => {
    let mark = sshd.mark();
    const r = await sneak('procmon', '--backend', 'bpftrace');
    expect(r.stderr).toBe('3 ok, 0 failed\n');
    expect(r.code).toBe(0);
    for (const [node, k] of [[N2, 'D1'], [N2, 'K1'], [N3, 'K2']] as const) {
      const ino = mntIno(pidOf(k));
      expect(r.stdout).toContain(`${node},${short(c[k])} execsnoop@${short(c[k])}.service started ${logOf('execsnoop', c[k])} ${ino} ${mapOf(c[k])} created\n`);
      expect(keysOf(mapOf(c[k]))).toEqual([ino]);
    }
    expect(sessions(mark)).toEqual({ [N2]: 1, [N3]: 1 });
    for (const k of ['K1', 'K2'] as const) {
      await waitLines('execsnoop', c[k], [/^Tracing exec in mount namespace \d+/]);
      // ctr tasks exec runs `sh -c SCRIPT` in the container: its third argument (execsnoop.bt
      // prints one line per argument: `TIME PID arg 2 0 SCRIPT`) names the marker
      ctd.exec(c[k], `ls /sp-${TAG}-marker-${k} 2>/dev/null; true`);
      const marker = new RegExp(`\targ\t2\t0\tls /sp-${TAG}-marker-${k} `);
      const lines = await waitLines('execsnoop', c[k], [marker]);
      expect(lines.some((l) => marker.test(l)), lines.join('\n')).toBe(true);
      // the other container's marker is not in this one's log
      const other = k === 'K1' ? 'K2' : 'K1';
      expect(lines.filter((l) => l.includes(`marker-${other}`))).toEqual([]);
    }
    mark = sshd.mark();
    const stop = await sneak('procmon', '--stop');
    expect(stop.stderr).toBe('3 ok, 0 failed\n');
    expect(sessions(mark)).toEqual({ [N2]: 1, [N3]: 1 });
    for (const k of ['D1', 'K1', 'K2'] as const) expect(existsSync(mapOf(c[k]))).toBe(false);
  });

  it('-t fswatch: the containerd containers\' upper dirs are watched; --stop', async () => {
    let mark = sshd.mark();
    const r = await sneak('fswatch');
    expect(r.stderr).toBe('3 ok, 0 failed\n');
    for (const [node, k] of [[N2, 'D1'], [N2, 'K1'], [N3, 'K2']] as const) expect(r.stdout).toContain(`${node},${short(c[k])} fswatch@${short(c[k])}.service started ${logOf('fswatch', c[k])}\n`);
    expect(sessions(mark)).toEqual({ [N2]: 1, [N3]: 1 });
    for (const k of ['K1', 'K2'] as const) {
      const upper = await fswatchSees(c[k], (s) => void ctd.exec(c[k], s));
      // the upper dir is the one the task's root is mounted with
      expect(readFileSync(path.join(upper, 'var/app/state'), 'utf8')).toBe('1\n');
      expect(readFileSync(`/proc/${pidOf(k)}/mountinfo`, 'utf8')).toContain(`upperdir=${upper},`);
    }
    mark = sshd.mark();
    const stop = await sneak('fswatch', '--stop');
    expect(stop.stderr).toBe('3 ok, 0 failed\n');
    expect(sessions(mark)).toEqual({ [N2]: 1, [N3]: 1 });
  });

  it('a containerd container removed between discovery and the run fails alone, in one line', async () => {
    ctd.remove(c.K2);
    const r = await sneak('files', '--chroot');
    expect(r.code).toBe(1);
    const err = r.stderr.split('\n').filter(Boolean);
    expect(err).toHaveLength(2);
    expect(err[0]).toMatch(new RegExp(`^sneakpeek: ${N3},${short(c.K2)}: crictl inspect: .*NotFound.*${c.K2}`));
    expect(err[1]).toBe('2 ok, 1 failed');
    const of = (id: string) => sortedLines(r.stdout).filter((l) => l.startsWith(`${N2},${short(id)} `));
    expect(of(c.D1)).toHaveLength(dk.dockerDiffSorted(c.D1).length);
    expect(of(c.K1).length).toBeGreaterThan(0);
    expect(sortedLines(r.stdout).filter((l) => l.startsWith(`${N3},`))).toEqual([]);
  });
});

describe.skipIf(skip)('podman: -t fswatch and -t procmon (bpftrace) on a live podman container', () => {
  const local = (type: string, ...args: string[]) => runToolAsync('sneakpeek', ['-t', type, '-n', c.P, '-c', 'podman', ...args], { env: { ...(sd.env as Record<string, string>), SNEAKPEEK_CONFIG: cfgFile }, timeoutMs: 120_000 });

  it('procmon: the map holds the container\'s inode; podman exec is traced; --stop', async () => {
    const ino = mntIno(pidOf('P'));
    const r = await local('procmon', '--backend', 'bpftrace');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${c.P} execsnoop@${short(c.Pid)}.service started ${logOf('execsnoop', c.Pid)} ${ino} ${mapOf(c.Pid)} created\n`);
    expect(keysOf(mapOf(c.Pid))).toEqual([ino]);
    await waitLines('execsnoop', c.Pid, [/^Tracing exec in mount namespace \d+/]);
    pm.exec(c.P, `ls /sp-${TAG}-podman-marker 2>/dev/null; true`);
    const marker = new RegExp(`\targ\t2\t0\tls /sp-${TAG}-podman-marker `);
    const lines = await waitLines('execsnoop', c.Pid, [marker]);
    expect(lines.some((l) => marker.test(l)), lines.join('\n')).toBe(true);
    const stop = await local('procmon', '--stop');
    expect(stop.stdout).toBe(`${c.P} execsnoop@${short(c.Pid)}.service stopped ${mapOf(c.Pid)} removed\n`);
  });

  it('fswatch: the podman container\'s upper dir is watched; --stop', async () => {
    const r = await local('fswatch');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${c.P} fswatch@${short(c.Pid)}.service started ${logOf('fswatch', c.Pid)}\n`);
    const upper = await fswatchSees(c.Pid, (s) => void pm.exec(c.P, s));
    expect(upper).toBe(pm.podman('inspect', '-f', '{{.GraphDriver.Data.UpperDir}}', c.P));
    expect((await local('fswatch', '--stop')).stdout).toBe(`${c.P} fswatch@${short(c.Pid)}.service stopped\n`);
  });
});
