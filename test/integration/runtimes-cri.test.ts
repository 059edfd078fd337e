// containerd's real CRI plugin (Debian's containerd 1.6), driven as kubelet drives it (a pod
// sandbox; a container with kubelet's mounts: /etc/hosts, /dev/termination-log, the service
// account token dir) through test/helpers/cri.ts — Kubernetes' default runtime, for real, with
// no kubelet and no crictl. What the CRI makes in a container's upper dir; sneakpeek -t files
// -c ctr on CRI containers equals docker diff of a docker container that made the same changes
// (the runtime rule: lib/runtime-rule.ts); sp_facts ctr on real CRI containers (64-hex ids,
// prefix, running → exited); the crictl stand-in's answer held to the real CRI's ContainerStatus.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { DEFAULTS, type Config } from '../../lib/config.ts';
import { sh } from '../../lib/quote.ts';
import { utf8 } from '../../lib/wire.ts';
import { runTool } from '../helpers/cli.ts';
import { LOOPBACK_PLUGIN, startContainerd, type Containerd } from '../helpers/containerd.ts';
import { criClient, type CriClient } from '../helpers/cri.ts';
import { writeCrictlStandin } from '../helpers/crictl-standin.ts';
import * as dk from '../helpers/docker.ts';
import { writeImageArchive } from '../helpers/layered-image.ts';
import { runSteps } from '../helpers/node-sh.ts';
import { commandWorks, dockerUp, isRoot, missing } from '../helpers/prereq.ts';

const TAG = 'runtimes';
const skip = missing({
  root: isRoot,
  'docker engine': dockerUp,
  'containerd and ctr (apt-get install docker.io)': () => commandWorks('containerd', ['--version']) && commandWorks('ctr', ['--version']),
  dash: () => commandWorks('dash', ['-c', 'true']),
  'the CNI loopback plugin (apt-get install containernetworking-plugins; podman brings it)': () => existsSync(LOOPBACK_PLUGIN),
});

/** sp_facts ENGINE NAME in a node script (dash); each variable as a record's last field. */
function facts(engine: string, name: string, cfg: Config) {
  const vars = ['sp_id', 'sp_state', 'sp_pid', 'sp_upper', 'sp_lower', 'sp_merged'];
  const step = sh`if sp_facts ${engine} ${name}; then ` + vars.map((v) => `rec M 0 "$${v}"; `).join('') + 'else rec ERR 0 "$sp_why"; fi';
  const r = runSteps([step], { cfg, libs: ['get_container_ns'] });
  expect(r.stderr).toBe('');
  if (r.records[0]?.tag === 'ERR') throw new Error(`sp_facts ${engine} ${name}: ${utf8(r.records[0].message)}`);
  const [id = '', state = '', pid = '', upper = '', lower = '', merged = ''] = r.records.map((x) => (x.tag === 'M' ? utf8(x.path) : ''));
  return { id, state, pid: Number(pid), upper, lower, merged };
}

function upperEntries(upper: string): string[] {
  const r = spawnSync('find', ['.', '-mindepth', '1', '-printf', '%y /%P\\n'], { cwd: upper, encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).sort((a, b) => Buffer.compare(Buffer.from(a.slice(2)), Buffer.from(b.slice(2))));
}

describe.skipIf(skip)("containerd's real CRI", () => {
  let ctd: Containerd;
  let cri: CriClient;
  let tmp: string;
  let pod: string;
  let cfg: Config;
  let cfgFile: string;
  const refs = { busybox: '', distro: '' };
  const PAUSE = `docker.io/sneakpeek-${TAG}/pause:${process.pid}`;

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), `sp-${TAG}-cri-`));
    const base = dk.ensureBusyboxImage();
    ctd = await startContainerd(`${TAG}-cri`, { criSandboxImage: PAUSE });
    cfg = { ...DEFAULTS, paths: { ...DEFAULTS.paths, crictl: '/nonexistent/crictl' }, containerd: { address: ctd.address, namespace: ctd.namespace } };
    cfgFile = path.join(tmp, 'sneakpeek.yaml');
    writeFileSync(cfgFile, stringify({ sudo: false, paths: { crictl: '/nonexistent/crictl' }, containerd: cfg.containerd }));
    // images without docker build: the pause image is busybox that sleeps; the "distro-like"
    // one has /run and /var/run -> /run, as Debian and Alpine images do
    ctd.importArchive(writeImageArchive(base, PAUSE.replace('docker.io/', ''), { cmd: ['/bin/sleep', '2147483647'] }, tmp));
    refs.busybox = ctd.importImage(base);
    refs.distro = ctd.importArchive(
      writeImageArchive(base, `sneakpeek-${TAG}/distro:${process.pid}`, {
        layers: [
          (d) => {
            mkdirSync(path.join(d, 'run'));
            mkdirSync(path.join(d, 'var'));
            symlinkSync('/run', path.join(d, 'var/run'));
          },
        ],
      }, tmp),
    );
    cri = criClient(ctd.address);
    const logDir = path.join(tmp, 'pods');
    mkdirSync(logDir);
    pod = await cri.runPodSandbox({ name: `sp-${TAG}`, uid: `uid-${process.pid}`, namespace: 'default', logDir });
  });
  afterAll(async () => {
    if (pod) {
      await cri.stopPodSandbox(pod).catch(() => undefined);
      await cri.removePodSandbox(pod).catch(() => undefined);
    }
    dk.cleanupContainers();
    await ctd?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('what the CRI makes in the upper dir: mount points for its /etc files, and for kubelet\'s mounts', async () => {
    const plain = await cri.createContainer(pod, { name: 'plain', image: refs.busybox, command: ['/bin/sleep', '100000'] });
    await cri.startContainer(plain);
    // kubelet's mounts for a pod with a service account (hostPath sources stand in for its volumes)
    const kubelet = path.join(tmp, 'kubelet');
    mkdirSync(path.join(kubelet, 'sa'), { recursive: true });
    writeFileSync(path.join(kubelet, 'etc-hosts'), '127.0.0.1 localhost\n');
    writeFileSync(path.join(kubelet, 'termination-log'), '');
    writeFileSync(path.join(kubelet, 'sa', 'token'), 'token\n');
    const withMounts = await cri.createContainer(pod, {
      name: 'with-mounts',
      image: refs.distro,
      command: ['/bin/sleep', '100000'],
      mounts: [
        { containerPath: '/etc/hosts', hostPath: path.join(kubelet, 'etc-hosts') },
        { containerPath: '/dev/termination-log', hostPath: path.join(kubelet, 'termination-log') },
        { containerPath: '/var/run/secrets/kubernetes.io/serviceaccount', hostPath: path.join(kubelet, 'sa'), readonly: true },
      ],
    });
    await cri.startContainer(withMounts);
    // the CRI drops the default spec's /run tmpfs (oci.WithoutRunMount) and bind-mounts
    // /etc/hostname, /etc/hosts, /etc/resolv.conf, /dev/shm from the sandbox
    expect(upperEntries(facts('ctr', plain, cfg).upper)).toEqual([
      'd /dev', 'd /etc', 'f /etc/hostname', 'f /etc/hosts', 'f /etc/resolv.conf', 'd /proc', 'd /sys',
    ]);
    // /dev/termination-log lands in /dev's tmpfs; the token dir, through /var/run -> /run, in the upper dir
    expect(upperEntries(facts('ctr', withMounts, cfg).upper)).toEqual([
      'd /dev', 'd /etc', 'f /etc/hostname', 'f /etc/hosts', 'f /etc/resolv.conf', 'd /proc', 'd /run', 'd /run/secrets',
      'd /run/secrets/kubernetes.io', 'd /run/secrets/kubernetes.io/serviceaccount', 'd /sys',
    ]);
    // what sneakpeek shows for them: nothing the runtime made; for kubelet's service-account
    // mount points, the two the list does not name (under /run/secrets, which it does)
    const files = (id: string) => runTool('sneakpeek', ['-t', 'files', '--chroot', '-n', id, '-c', 'ctr'], { env: { SNEAKPEEK_CONFIG: cfgFile } });
    expect(files(plain)).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(files(withMounts)).toMatchObject({ code: 0, stdout: 'A /run/secrets/kubernetes.io\nA /run/secrets/kubernetes.io/serviceaccount\n', stderr: '' });
  });

  it('sneakpeek -t files -c ctr (and -c containerd) on a CRI container: docker diff\'s lines', async () => {
    const id = await cri.createContainer(pod, { name: 'changes', image: refs.busybox, command: ['/bin/sleep', '100000'] });
    await cri.startContainer(id);
    const d = `sp-${TAG}-${process.pid}-cri`;
    dk.runContainer(d, dk.ensureBusyboxImage());
    const script = 'echo x > /tmp/x && echo more >> /etc/app/app.conf && rm -rf /data/old && echo h > /etc/hostname.new';
    ctd.exec(id, script);
    dk.exec(d, script);
    const dockerDiff = dk.dockerDiffSorted(d);
    expect(dockerDiff).toContain('C /etc');
    for (const engine of ['ctr', 'containerd']) {
      const r = runTool('sneakpeek', ['-t', 'files', '--chroot', '-n', id.slice(0, 12), '-c', engine], { env: { SNEAKPEEK_CONFIG: cfgFile } });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(dk.sortBytes(r.stdout.split('\n').filter(Boolean))).toEqual(dockerDiff);
    }
  });

  it('sp_facts ctr on a CRI container (id prefix), running then exited; the stand-in answers as the CRI does', async () => {
    const id = await cri.createContainer(pod, { name: 'facts', image: refs.busybox, command: ['/bin/sleep', '100000'] });
    await cri.startContainer(id);
    const standin = writeCrictlStandin(path.join(tmp, 'standin'), { backend: 'ctr', address: ctd.address });
    const real = await cri.containerStatus(id);
    expect(real.state).toBe('CONTAINER_RUNNING');
    const f = facts('ctr', id.slice(0, 12), cfg);
    expect(f).toMatchObject({ id, state: 'running', pid: real.info.pid });
    expect(facts('crictl', id.slice(0, 12), { ...cfg, paths: { ...cfg.paths, crictl: standin } })).toEqual(f);
    // the stand-in's answer against the real CRI's: same state, pid, snapshot; its info keys
    // are the real ones, in the real order (it leaves out runtimeOptions and config)
    const mine = JSON.parse(spawnSync(standin, ['inspect', '-o', 'json', id], { encoding: 'utf8' }).stdout);
    expect(mine.status.state).toBe(real.state);
    expect(mine.info).toMatchObject({ pid: real.info.pid, snapshotKey: real.info.snapshotKey, snapshotter: real.info.snapshotter });
    expect(Object.keys(real.info).filter((k) => k in mine.info)).toEqual(Object.keys(mine.info));

    await cri.stopContainer(id, 0);
    const exited = await cri.containerStatus(id);
    expect(exited.state).toBe('CONTAINER_EXITED');
    expect(exited.info.pid).toBe(0);
    const s = facts('ctr', id, cfg);
    expect(s).toMatchObject({ id, state: 'stopped', pid: 0, upper: f.upper, lower: f.lower });
    expect(JSON.parse(spawnSync(standin, ['inspect', '-o', 'json', id], { encoding: 'utf8' }).stdout).status.state).toBe(exited.state);
  });
});
