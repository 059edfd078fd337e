// sneakpeek -t files on every engine, live: the same image and the same change matrix (the
// docker parity cases, the issue's example, an in-place edit, nothing at all) in docker, podman
// and a private containerd, each container reached by the tool itself (-n ID -c ENGINE):
//   -c docker                       = docker diff
//   -c podman                       = podman diff, line for line (podman's own algorithm)
//   -c ctr, -c crictl (containerd, through the stand-in), -c containerd (no crictl → ctr)
//                                   = docker diff of the docker container that did the same
//   -c crictl on CRI-O's layout (the stand-in on podman storage) = docker diff as well
// Then each engine's paused, stopped and removed containers with -t files, -t merged_dir and
// get_container_ns. The tools run in-process (main(argv, io)): the same code as the CLI,
// without a tsx start per call.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { IO } from '../../lib/io/entry.ts';
import { main as get_container_ns } from '../../scripts/get_container_ns.ts';
import { main as sneakpeek } from '../../scripts/sneakpeek.ts';
import { changeCases } from '../helpers/change-matrix.ts';
import { rootOverlay, startContainerd, type Containerd } from '../helpers/containerd.ts';
import { writeCrictlStandin } from '../helpers/crictl-standin.ts';
import * as dk from '../helpers/docker.ts';
import * as pm from '../helpers/podman.ts';
import { commandWorks, dockerUp, isRoot, missing } from '../helpers/prereq.ts';

const TAG = 'runtimes';
const skip = missing({
  root: isRoot,
  'docker engine': dockerUp,
  'podman with the overlay driver (apt-get install podman)': pm.podmanWorks,
  'containerd and ctr (apt-get install docker.io)': () => commandWorks('containerd', ['--version']) && commandWorks('ctr', ['--version']),
});

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

const MAINS = { sneakpeek, get_container_ns };
/** A tool in-process with its own config file. */
async function tool(name: keyof typeof MAINS, args: string[], cfgFile: string): Promise<Out> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const sink = (into: Buffer[]) => new Writable({ write: (c, _e, cb) => (into.push(Buffer.from(c)), cb()) });
  const io: IO = { stdout: sink(out), stderr: sink(err), stdin: Readable.from([]), env: { ...process.env, SNEAKPEEK_CONFIG: cfgFile } };
  const code = await MAINS[name](args, io);
  return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}
const lines = (s: string) => dk.sortBytes(s.split('\n').filter(Boolean));

let tmp: string;
let ctd: Containerd;
const images = { docker: '', podman: '', ctr: '' };
/** Config files: containerd without crictl on the node; crictl answering from containerd; from podman (CRI-O). */
const cfg = { plain: '', criCtd: '', criO: '' };
const hexId = () => randomBytes(32).toString('hex');

function writeCfg(name: string, paths: Record<string, string>): string {
  const file = path.join(tmp, `${name}.yaml`);
  writeFileSync(file, stringify({ ssh: { user: 'root' }, sudo: false, paths, containerd: { address: ctd.address, namespace: ctd.namespace } }));
  return file;
}

/** One container per engine that made the same changes. */
interface Set3 {
  docker: string;
  podman: string;
  podmanId: string;
  ctr: string;
}
function startAll(suffix: string, podmanFlags: string[] = []): Set3 {
  const docker = `sp-${TAG}-${process.pid}-${suffix}`;
  dk.runContainer(docker, images.docker);
  const podman = `sp-${TAG}-${process.pid}-${suffix}`;
  const podmanId = pm.runContainer(podman, images.podman, ...podmanFlags);
  const ctr = hexId();
  ctd.run(ctr, images.ctr, 'sleep', '100000');
  return { docker, podman, podmanId, ctr };
}
function execAll(s: Set3, script: string): void {
  dk.exec(s.docker, script);
  pm.exec(s.podman, script);
  ctd.exec(s.ctr, script);
}

beforeAll(async () => {
  if (skip) return;
  tmp = mkdtempSync(path.join(os.tmpdir(), `sp-${TAG}-files-`));
  images.docker = dk.ensureBusyboxImage();
  images.podman = pm.loadImage(images.docker);
  ctd = await startContainerd(`${TAG}-files`);
  images.ctr = ctd.importImage(images.docker);
  cfg.plain = writeCfg('plain', { crictl: path.join(tmp, 'no-crictl') });
  cfg.criCtd = writeCfg('cri-ctd', { crictl: writeCrictlStandin(path.join(tmp, 'ctd'), { backend: 'ctr', address: ctd.address }) });
  cfg.criO = writeCfg('cri-o', { crictl: writeCrictlStandin(path.join(tmp, 'crio'), { backend: 'podman' }) });
}, 120_000);

afterAll(async () => {
  dk.cleanupContainers();
  pm.cleanupContainers();
  await ctd?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const CASES: Record<string, string> = {
  ...changeCases(`sp-${TAG}-canary-${process.pid}`),
  "x: writes /tmp/x and removes /etc/motd (the issue's example)": 'echo x > /tmp/x && rm /etc/motd',
  'y: edits one image file in place': 'echo more >> /etc/app/app.conf',
  'z: does nothing': 'true',
};

describe.skipIf(skip)('-t files --chroot on every engine equals that engine\'s own diff', () => {
  it.each(Object.entries(CASES))('%s', async (label, script) => {
    // podman drops CAP_MKNOD by default; docker and ctr's default spec keep it
    const s = startAll(`m${label[0]}`, label.startsWith('i:') ? ['--cap-add', 'MKNOD'] : []);
    try {
      execAll(s, script);
      const dockerDiff = dk.dockerDiffSorted(s.docker);
      const podmanDiff = pm.podmanDiffSorted(s.podman);
      const runs: [string, string[], string, string[]][] = [
        ['docker', ['-n', s.docker, '-c', 'docker'], cfg.plain, dockerDiff],
        ['podman', ['-n', s.podman, '-c', 'podman'], cfg.plain, podmanDiff],
        ['ctr', ['-n', s.ctr, '-c', 'ctr'], cfg.plain, dockerDiff],
        ['containerd (no crictl: ctr)', ['-n', s.ctr, '-c', 'containerd'], cfg.plain, dockerDiff],
        ['crictl on containerd', ['-n', s.ctr, '-c', 'crictl'], cfg.criCtd, dockerDiff],
        ['containerd (crictl on the node)', ['-n', s.ctr, '-c', 'containerd'], cfg.criCtd, dockerDiff],
        ['crictl on CRI-O\'s layout', ['-n', s.podmanId, '-c', 'crictl'], cfg.criO, dockerDiff],
      ];
      for (const [what, args, file, want] of runs) {
        const r = await tool('sneakpeek', ['-t', 'files', '--chroot', ...args], file);
        expect({ what, stderr: r.stderr, code: r.code }).toEqual({ what, stderr: '', code: 0 });
        expect({ what, lines: lines(r.stdout) }).toEqual({ what, lines: want });
      }
    } finally {
      dk.cleanupContainers();
      pm.cleanupContainers();
      ctd.remove(s.ctr);
    }
  });

  // README "podman diff is not docker diff": each row, live, with both engines' own diff
  it.each<[string, string, string[], string[]]>([
    ['edits a file in place', 'echo more >> /etc/app/app.conf', ['C /etc', 'C /etc/app', 'C /etc/app/app.conf'], ['C /etc/app/app.conf']],
    ['deletes a directory and re-creates it with other content', 'rm -rf /data/old && mkdir /data/old && echo n > /data/old/new.txt',
      ['C /data', 'C /data/old', 'D /data/old/a.txt', 'D /data/old/b.txt', 'D /data/old/deep', 'A /data/old/new.txt'], ['C /data', 'D /data/old', 'A /data/old/new.txt']],
    ['opens a file for writing and changes nothing', 'exec 3>>/etc/motd', [], ['C /etc/motd']],
    ['chowns a directory, nothing else', 'chown 65534:65534 /data', ['C /data'], []],
    ['creates and removes a file in a directory (its mtime changes)', 'touch /data/t && rm /data/t', [], ['C /data']],
  ])('docker and podman differ: %s', async (_what, script, docker, podman) => {
    const s = startAll('table');
    try {
      execAll(s, script);
      expect(dk.dockerDiffSorted(s.docker)).toEqual(dk.sortBytes(docker));
      // every podman container also has C /etc: the runtime's files in it
      expect(pm.podmanDiffSorted(s.podman)).toEqual(dk.sortBytes([...podman, 'C /etc']));
      expect(lines((await tool('sneakpeek', ['-t', 'files', '--chroot', '-n', s.podman, '-c', 'podman'], cfg.plain)).stdout)).toEqual(pm.podmanDiffSorted(s.podman));
      expect(lines((await tool('sneakpeek', ['-t', 'files', '--chroot', '-n', s.ctr, '-c', 'ctr'], cfg.plain)).stdout)).toEqual(dk.sortBytes(docker));
    } finally {
      dk.cleanupContainers();
      pm.cleanupContainers();
      ctd.remove(s.ctr);
    }
  });

  it('a fresh container: what each runtime made in its upper dir, and -t files shows none of it', async () => {
    const s = startAll('fresh');
    try {
      const entries = (upper: string) =>
        dk.sortBytes(spawnSync('find', ['.', '-mindepth', '1', '-printf', '%y /%P\\n'], { cwd: upper, encoding: 'utf8' }).stdout.split('\n').filter(Boolean));
      // docker keeps its mount points and files in the -init layer below: nothing in the upper dir
      expect(entries(dk.docker('inspect', '-f', '{{.GraphDriver.Data.UpperDir}}', s.docker))).toEqual([]);
      // podman: runc's mount points, the bind targets of /etc/hostname, /etc/hosts and
      // /run/.containerenv (and so /etc and /run), podman's own /etc/mtab -> /proc/mounts
      expect(entries(pm.podman('inspect', '-f', '{{.GraphDriver.Data.UpperDir}}', s.podman))).toEqual(dk.sortBytes([
        'd /dev', 'd /etc', 'f /etc/hostname', 'f /etc/hosts', 'l /etc/mtab', 'd /proc', 'd /run', 'f /run/.containerenv', 'd /sys']));
      // ctr run: the mount points of containerd's default spec
      expect(entries(rootOverlay(ctd.task(s.ctr)!.pid)!.upper)).toEqual(['d /dev', 'd /proc', 'd /run', 'd /sys']);
      const files = async (args: string[]) => (await tool('sneakpeek', ['-t', 'files', '--chroot', ...args], cfg.plain)).stdout;
      expect(await files(['-n', s.docker])).toBe('');
      expect(await files(['-n', s.ctr, '-c', 'ctr'])).toBe('');
      // podman diff itself keeps the C /etc those files made
      expect(await files(['-n', s.podman, '-c', 'podman'])).toBe('C /etc\n');
      expect(pm.podmanDiffSorted(s.podman)).toEqual(['C /etc']);
    } finally {
      dk.cleanupContainers();
      pm.cleanupContainers();
      ctd.remove(s.ctr);
    }
  });

  it('the issue\'s report: podman\'s 8 runtime lines are gone, and what is left is podman diff', async () => {
    const s = startAll('issue');
    try {
      execAll(s, 'echo x > /tmp/x && rm /etc/motd');
      const r = await tool('sneakpeek', ['-t', 'files', '--chroot', '-n', s.podman, '-c', 'podman'], cfg.plain);
      for (const l of ['A /dev', 'A /proc', 'A /sys', 'A /run', 'A /run/.containerenv', 'A /etc/hostname', 'A /etc/hosts', 'A /etc/mtab']) expect(r.stdout).not.toContain(`${l}\n`);
      expect(lines(r.stdout)).toEqual(pm.podmanDiffSorted(s.podman));
      expect(lines(r.stdout)).toEqual(dk.sortBytes(['C /etc', 'D /etc/motd', 'C /tmp', 'A /tmp/x']));
      // the same container read as a docker-style diff with the rule (crictl, CRI-O's layout):
      // docker diff's lines, without C /etc for the files podman made in it
      expect(lines((await tool('sneakpeek', ['-t', 'files', '--chroot', '-n', s.podmanId, '-c', 'crictl'], cfg.criO)).stdout)).toEqual(dk.dockerDiffSorted(s.docker));
      // and a saved podman inspect document is read with podman's diff too (-f, no -c)
      const doc = path.join(tmp, 'podman-inspect.json');
      writeFileSync(doc, pm.podman('inspect', s.podman));
      expect(lines((await tool('sneakpeek', ['-t', 'files', '--chroot', '-f', doc], cfg.plain)).stdout)).toEqual(pm.podmanDiffSorted(s.podman));
    } finally {
      dk.cleanupContainers();
      pm.cleanupContainers();
      ctd.remove(s.ctr);
    }
  });
});

/** How each engine's container is driven through its states. */
interface Road {
  label: string;
  engine: string;
  cfg: () => string;
  start(): { name: string; pid: () => number; exec: (script: string) => void };
  pause(name: string): void;
  unpause(name: string): void;
  stop(name: string): void;
  remove(name: string): void;
  gone: RegExp;
}

const dockerRoad: Road = {
  label: 'docker', engine: 'docker', cfg: () => cfg.plain,
  start() {
    const name = `sp-${TAG}-${process.pid}-states`;
    dk.runContainer(name, images.docker);
    return { name, pid: () => Number(dk.docker('inspect', '-f', '{{.State.Pid}}', name)), exec: (s) => void dk.exec(name, s) };
  },
  pause: (n) => void dk.docker('pause', n), unpause: (n) => void dk.docker('unpause', n),
  stop: (n) => void dk.docker('stop', '-t', '0', n), remove: (n) => void dk.docker('rm', '-f', n),
  gone: /No such container/,
};
const podmanRoad = (engine: 'podman' | 'crictl'): Road => ({
  label: engine === 'podman' ? 'podman' : "crictl on CRI-O's layout", engine, cfg: () => (engine === 'podman' ? cfg.plain : cfg.criO),
  start() {
    const n = `sp-${TAG}-${process.pid}-states-${engine}`;
    const id = pm.runContainer(n, images.podman);
    const name = engine === 'podman' ? n : id;
    return { name, pid: () => Number(pm.podman('inspect', '-f', '{{.State.Pid}}', id)), exec: (s) => void pm.exec(id, s) };
  },
  pause: pm.pause, unpause: pm.unpause, stop: pm.stop, remove: pm.remove,
  gone: engine === 'podman' ? /no such container/ : /NotFound/,
});
const ctdRoad = (engine: 'ctr' | 'crictl' | 'containerd'): Road => ({
  label: engine === 'crictl' ? 'crictl on containerd' : engine, engine, cfg: () => (engine === 'crictl' ? cfg.criCtd : cfg.plain),
  start() {
    const name = hexId();
    ctd.run(name, images.ctr, 'sleep', '100000');
    return { name, pid: () => ctd.task(name)?.pid ?? 0, exec: (s) => void ctd.exec(name, s) };
  },
  pause: (n) => ctd.pause(n), unpause: (n) => ctd.resume(n),
  // what the CRI does after an exit: the task goes, the container and its snapshot stay
  stop: (n) => (ctd.kill(n), ctd.deleteTask(n)),
  remove: (n) => ctd.remove(n),
  gone: engine === 'crictl' ? /NotFound/ : /ctr: no container '[0-9a-f]+' in namespace k8s\.io/,
});
const ROADS: [string, () => Road][] = [
  ['docker', () => dockerRoad],
  ['podman', () => podmanRoad('podman')],
  ['ctr', () => ctdRoad('ctr')],
  ['crictl on containerd', () => ctdRoad('crictl')],
  ['containerd (no crictl)', () => ctdRoad('containerd')],
  ["crictl on CRI-O's layout", () => podmanRoad('crictl')],
];

describe.skipIf(skip).each(ROADS)('%s: running, paused, stopped, removed', (_label, get) => {
  let road: Road;
  let c: ReturnType<Road['start']>;
  let running: string[];
  const files = (...more: string[]) => tool('sneakpeek', ['-t', 'files', '--chroot', '-n', c.name, '-c', road.engine, ...more], road.cfg());
  const mergedDir = () => tool('sneakpeek', ['-t', 'merged_dir', '-n', c.name, '-c', road.engine], road.cfg());
  const ns = () => tool('get_container_ns', ['-n', c.name, '-c', road.engine], road.cfg());

  beforeAll(async () => {
    road = get();
    c = road.start();
    c.exec('echo x > /tmp/x && rm /etc/motd && echo more >> /etc/app/app.conf');
    const r = await files();
    expect(r.stderr).toBe('');
    running = lines(r.stdout);
    expect(running).toContain('A /tmp/x');
    expect(running).toContain('D /etc/motd');
  });

  it('running: merged_dir is the mounted root; get_container_ns is stat -L of the task pid', async () => {
    const m = await mergedDir();
    expect(m.stderr).toBe('');
    expect(m.code).toBe(0);
    const dir = m.stdout.trim();
    expect(statSync(path.join(dir, 'tmp/x')).isFile()).toBe(true);
    const n = await ns();
    expect(n.stderr).toBe('');
    expect(n.stdout).toBe(`${statSync(`/proc/${c.pid()}/ns/mnt`).ino}\n`);
  });

  it('paused: the same lines, the same root, the same namespace (the process is frozen, not gone)', async () => {
    const before = { m: (await mergedDir()).stdout, n: (await ns()).stdout };
    road.pause(c.name);
    try {
      const f = await files();
      expect(f.stderr).toBe('');
      expect(lines(f.stdout)).toEqual(running);
      expect(await mergedDir()).toEqual({ code: 0, stdout: before.m, stderr: '' });
      expect(await ns()).toEqual({ code: 0, stdout: before.n, stderr: '' });
    } finally {
      road.unpause(c.name);
    }
  });

  it('stopped: -t files still reads its layers; merged_dir and get_container_ns are one clear error', async () => {
    road.stop(c.name);
    const f = await files();
    expect(f.stderr).toBe('');
    expect(f.code).toBe(0);
    expect(lines(f.stdout)).toEqual(running);
    // without --chroot there is no host root to show: container paths, and a warning
    const host = await tool('sneakpeek', ['-t', 'files', '-n', c.name, '-c', road.engine], road.cfg());
    expect(host.stderr).toBe(`sneakpeek: warning: ${c.name}: the container is stopped: its root is not mounted; paths are container paths\n`);
    expect(lines(host.stdout)).toEqual(running);
    const m = await mergedDir();
    expect(m).toEqual({ code: 1, stdout: '', stderr: `sneakpeek: ${c.name}: container ${c.name} is stopped: its root is not mounted\n` });
    const n = await ns();
    expect(n).toEqual({ code: 1, stdout: '', stderr: `get_container_ns: localhost: ${c.name}: container ${c.name} is not running (stopped)\n` });
  });

  it('removed: every tool fails with one clear line', async () => {
    road.remove(c.name);
    for (const r of [await files(), await mergedDir(), await ns()]) {
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
      expect(r.stderr).toMatch(road.gone);
    }
  });
});
