// A private containerd for tests: Debian's containerd 1.6 binary with a config of its own
// (root under a temp dir; state, socket and runc state under /run/sp-ctd-<tag>-<pid>; the
// overlayfs snapshotter; the CRI plugin off), never the docker engine's containerd. Images
// come from docker (`docker save IMG | ctr images import -`), containers run with
// `ctr run -d --snapshotter overlayfs` in a network namespace of their own (loopback only).
//
//   const ctd = await startContainerd('runtimes-prep');
//   const ref = ctd.importImage('sneakpeek-test/busybox:1');   // docker.io/sneakpeek-test/busybox:1
//   ctd.run('sp-c1', ref, 'sleep', '100000');
//   ctd.exec('sp-c1', 'echo x > /tmp/x');
//   ctd.task('sp-c1')                // { pid, status: 'RUNNING' | 'PAUSED' | 'STOPPED' | … } or undefined
//   ctd.pause / resume / kill / deleteTask (container + snapshot stay: a stopped container) / remove
//   await ctd.stop();               // removes what it made, ends only its own containerd (by pid)
//
// containerd-shim-runc-v2 puts its sockets in /run/containerd/s whatever the config says (the
// name is a hash of our socket path, so nothing collides); everything else stays in our dirs.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const NAMESPACE = 'k8s.io';
/** containernetworking-plugins (a dependency of Debian's podman) */
export const LOOPBACK_PLUGIN = '/usr/lib/cni/loopback';

export interface CtrTask {
  pid: number;
  status: string;
}

export interface Containerd {
  address: string;
  namespace: string;
  /** containerd's own root and state dirs (under the helper's temp dir and /run dir). */
  root: string;
  state: string;
  /** Where the shim mounts a task's root (its merged dir) while the task exists. */
  rootfs(id: string): string;
  pid: number;
  logFile: string;
  /** ctr -a ADDRESS -n k8s.io ARGS…: stdout, throws with ctr's stderr on failure. */
  ctr(...args: string[]): string;
  ctrTry(...args: string[]): { status: number; stdout: string; stderr: string };
  /** Import a docker image; returns the reference containerd gave it. */
  importImage(dockerImage: string): string;
  /** Import an image archive (docker save format) from a file; returns its reference. */
  importArchive(file: string): string;
  /** ctr run -d: a running container (task) named `id`, in its own netns. */
  run(id: string, image: string, ...cmd: string[]): void;
  /** The same with more `ctr run` flags (e.g. --label k=v). */
  runWith(flags: string[], id: string, image: string, ...cmd: string[]): void;
  /** Run `sh -c script` in the running container; its stdout. */
  exec(id: string, script: string): string;
  task(id: string): CtrTask | undefined;
  pause(id: string): void;
  resume(id: string): void;
  /** Signal the task and wait until containerd reports it STOPPED. */
  kill(id: string, signal?: string): void;
  /** Delete the (stopped) task: the container and its snapshot stay. */
  deleteTask(id: string): void;
  /** Remove the container (its task first) and its snapshot. */
  remove(id: string): void;
  /** Containers this helper made that still exist. */
  made(): string[];
  stop(): Promise<void>;
}

/** The cgroup dirs runc makes for ctr's default cgroupsPath /k8s.io/<id> (v1: one per hierarchy). */
const cgroupParents = () => [
  '/sys/fs/cgroup/k8s.io',
  ...readdirSync('/sys/fs/cgroup').map((h) => path.join('/sys/fs/cgroup', h, NAMESPACE)),
];

/** rmdir DIR and the directories in it, deepest first; one in use or not empty stays (not only ours). */
function rmdirTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rmdirTree(path.join(dir, e.name));
  try {
    rmdirSync(dir);
  } catch {
    // in use
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));

/** The config: own root/state/socket, overlayfs; the CRI plugin off unless `cri` is given. */
export function containerdConfig(root: string, state: string, address: string, cri?: CriConfig): string {
  const lines = [
    'version = 2',
    `root = ${JSON.stringify(root)}`,
    `state = ${JSON.stringify(state)}`,
    ...(cri ? [] : ['disabled_plugins = ["io.containerd.grpc.v1.cri"]']),
    '[grpc]',
    `  address = ${JSON.stringify(address)}`,
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${JSON.stringify(path.join(root, 'opt'))}`,
  ];
  if (cri)
    lines.push(
      '[plugins."io.containerd.grpc.v1.cri"]',
      `  sandbox_image = ${JSON.stringify(cri.sandboxImage)}`,
      '  stream_server_address = "127.0.0.1"',
      '  stream_server_port = "0"',
      // pod netns mounts under our state dir, not /var/run/netns
      '  netns_mounts_under_state_dir = true',
      // this VM refuses a lower oom_score_adj (the sandbox's -998): clamp as rootless setups do
      '  restrict_oom_score_adj = true',
      '  [plugins."io.containerd.grpc.v1.cri".containerd]',
      '    snapshotter = "overlayfs"',
      '    default_runtime_name = "runc"',
      '    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
      '      runtime_type = "io.containerd.runc.v2"',
      '      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
      `        Root = ${JSON.stringify(cri.runcRoot)}`,
      '  [plugins."io.containerd.grpc.v1.cri".cni]',
      `    bin_dir = ${JSON.stringify(cri.cniBin)}`,
      `    conf_dir = ${JSON.stringify(cri.cniConf)}`,
    );
  return [...lines, ''].join('\n');
}

interface CriConfig {
  sandboxImage: string;
  runcRoot: string;
  cniBin: string;
  cniConf: string;
}

/**
 * The pod network for CRI tests: the CRI wants an eth0 with an address in the CNI result.
 * This plugin reports one (192.0.2.10, TEST-NET-1) and creates nothing, so the pod's network
 * namespace keeps only its loopback (which the CRI sets up itself): no traffic can leave.
 */
const CNI_PLUGIN = `#!/bin/sh
# sneakpeek tests: report eth0 192.0.2.10/32 to the CRI, create nothing (loopback-only netns)
cat >/dev/null
case $CNI_COMMAND in
  ADD) printf '{"cniVersion":"0.4.0","interfaces":[{"name":"eth0","sandbox":"%s"}],"ips":[{"version":"4","address":"192.0.2.10/32","interface":0}]}' "$CNI_NETNS" ;;
  VERSION) printf '{"cniVersion":"0.4.0","supportedVersions":["0.3.0","0.3.1","0.4.0"]}' ;;
esac
`;

export interface ContainerdOptions {
  /** Name containerd's root and state dirs with a space and a tab (mountinfo escapes them). */
  oddPaths?: boolean;
  /** Turn the CRI plugin on (for a CRI client, test/helpers/cri.ts) with this pause image. */
  criSandboxImage?: string;
  /**
   * Where containerd's root (and so the snapshots: the upper dirs) goes; default the temp dir.
   * fswatch@.service runs with PrivateTmp=yes and cannot see an upper dir under /tmp.
   */
  under?: string;
}

export async function startContainerd(tag: string, opts: ContainerdOptions = {}): Promise<Containerd> {
  if (!/^[a-z0-9-]+$/.test(tag)) throw new Error(`containerd helper: tag '${tag}' must be [a-z0-9-]`);
  const root = mkdtempSync(path.join(opts.under ?? os.tmpdir(), `sp-ctd-${tag}-`));
  // the socket path must stay short (sun_path is 108 bytes): /run, not the temp dir
  const state = `/run/sp-ctd-${tag}-${process.pid}`;
  rmSync(state, { recursive: true, force: true });
  mkdirSync(state, { recursive: true, mode: 0o700 });
  const address = path.join(state, 'containerd.sock');
  const runcRoot = path.join(state, 'runc');
  const fifoDir = path.join(state, 'fifo');
  const configFile = path.join(root, 'config.toml');
  const logFile = path.join(root, 'containerd.log');
  const odd = opts.oddPaths ? ' with space\tand tab' : '';
  const ctdRoot = path.join(root, `root${odd}`);
  const ctdState = path.join(state, `state${odd}`);
  let cri: CriConfig | undefined;
  const cniNetwork = `sp-none-${tag}-${process.pid}`;
  if (opts.criSandboxImage) {
    cri = { sandboxImage: opts.criSandboxImage, runcRoot, cniBin: path.join(root, 'cni-bin'), cniConf: path.join(root, 'cni-conf') };
    mkdirSync(cri.cniBin);
    mkdirSync(cri.cniConf);
    writeFileSync(path.join(cri.cniBin, 'sp-eth0'), CNI_PLUGIN, { mode: 0o755 });
    // the CRI brings up the pod's lo with the real loopback plugin (containernetworking-plugins)
    symlinkSync(LOOPBACK_PLUGIN, path.join(cri.cniBin, 'loopback'));
    writeFileSync(path.join(cri.cniConf, '10-sp.conflist'), JSON.stringify({ cniVersion: '0.4.0', name: cniNetwork, plugins: [{ type: 'sp-eth0' }] }));
  }
  // go-cni caches results under /var/lib/cni: removed at stop when we made it
  const cniCacheBefore = existsSync('/var/lib/cni');
  writeFileSync(configFile, containerdConfig(ctdRoot, ctdState, address, cri));

  const cgroupsBefore = new Set(cgroupParents().filter((d) => existsSync(d)));
  const log = openSync(logFile, 'a');
  const child = spawn('containerd', ['--config', configFile], { detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  child.unref();
  const pid = child.pid;
  if (!pid) throw new Error('containerd helper: containerd did not start');

  const base = ['-a', address, '-n', NAMESPACE];
  const ctrTry = (...args: string[]) => {
    const r = spawnSync('ctr', [...base, ...args], { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 60_000 });
    return { status: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
  };
  const ctr = (...args: string[]) => {
    const r = ctrTry(...args);
    if (r.status !== 0) throw new Error(`ctr ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.status}`}`);
    return r.stdout;
  };

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (existsSync(address) && spawnSync('ctr', ['-a', address, 'version'], { stdio: 'ignore', timeout: 5_000 }).status === 0) break;
    if (!alive(pid) || Date.now() > deadline) {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
      const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n').slice(-5).join('\n') : '';
      rmSync(root, { recursive: true, force: true });
      rmSync(state, { recursive: true, force: true });
      throw new Error(`containerd helper: containerd did not answer within 30 s\n${tail}`);
    }
    await sleep(100);
  }

  const made = new Set<string>();
  let execs = 0;

  const task = (id: string): CtrTask | undefined => {
    for (const line of ctr('tasks', 'ls').split('\n').slice(1)) {
      const [tid, pid, status] = line.trim().split(/\s+/);
      if (tid === id) return { pid: Number(pid), status: status ?? '' };
    }
    return undefined;
  };

  const importTar = (tar: Buffer, what: string) => {
    const r = spawnSync('ctr', [...base, 'images', 'import', '-'], { input: tar, encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) throw new Error(`ctr images import ${what}: ${r.stderr.trim()}`);
    const ref = /^unpacking (\S+) /m.exec(r.stdout)?.[1];
    if (!ref) throw new Error(`ctr images import ${what}: no reference in ${JSON.stringify(r.stdout)}`);
    return ref;
  };

  const h: Containerd = {
    address,
    namespace: NAMESPACE,
    root: ctdRoot,
    state: ctdState,
    rootfs: (id) => path.join(ctdState, 'io.containerd.runtime.v2.task', NAMESPACE, id, 'rootfs'),
    pid,
    logFile,
    ctr,
    ctrTry,
    importImage(dockerImage) {
      const tar = execFileSync('docker', ['save', dockerImage], { maxBuffer: 512 << 20 });
      return importTar(tar, dockerImage);
    },
    importArchive: (file) => importTar(readFileSync(file), file),
    run: (id, image, ...cmd) => h.runWith([], id, image, ...cmd),
    runWith(flags, id, image, ...cmd) {
      made.add(id);
      ctr('run', '-d', '--null-io', '--snapshotter', 'overlayfs', '--runc-root', runcRoot, ...flags, image, id, ...cmd);
    },
    exec(id, script) {
      execs += 1;
      return ctr('tasks', 'exec', '--exec-id', `sp-exec-${process.pid}-${execs}`, '--fifo-dir', fifoDir, id, 'sh', '-c', script);
    },
    task,
    pause: (id) => void ctr('tasks', 'pause', id),
    resume: (id) => void ctr('tasks', 'resume', id),
    kill(id, signal = 'SIGKILL') {
      ctr('tasks', 'kill', '--signal', signal, id);
      const until = Date.now() + 20_000;
      while (task(id)?.status !== 'STOPPED') {
        if (Date.now() > until) throw new Error(`ctr: task ${id} did not stop`);
        spawnSync('sleep', ['0.05']);
      }
    },
    deleteTask: (id) => void ctr('tasks', 'delete', id),
    remove(id) {
      if (task(id)) ctrTry('tasks', 'delete', '--force', id);
      ctr('containers', 'delete', id); // its snapshot goes with it (ctr's default)
      made.delete(id);
    },
    made: () => {
      const exist = new Set(ctr('containers', 'ls', '-q').split('\n').filter(Boolean));
      return [...made].filter((id) => exist.has(id));
    },
    async stop() {
      if (alive(pid)) {
        try {
          // with the CRI on, the pods and containers in this private containerd are all ours
          const ids = cri ? ctr('containers', 'ls', '-q').split('\n').filter(Boolean) : h.made();
          for (const id of ids) {
            if (task(id)) ctrTry('tasks', 'delete', '--force', id);
            ctrTry('containers', 'delete', id);
          }
        } catch {
          // containerd no longer answers: its shims exit with it below or keep their task
        }
        process.kill(pid, 'SIGTERM');
        const until = Date.now() + 15_000;
        while (alive(pid) && Date.now() < until) await sleep(100);
        if (alive(pid)) process.kill(pid, 'SIGKILL');
      }
      // a task that outlived us leaves its rootfs mounted under state: unmount before rm
      const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .map((l) => unescapeMountinfo(l.split(' ')[4] ?? ''))
        .filter((m) => m.startsWith(`${state}/`) || m.startsWith(`${root}/`))
        .reverse();
      for (const m of mounts) spawnSync('umount', ['-l', m]);
      rmSync(state, { recursive: true, force: true });
      rmSync(root, { recursive: true, force: true });
      // go-cni's result cache: our network's entries (a failed pod setup leaves one behind)
      const cache = '/var/lib/cni/results';
      if (cri && existsSync(cache)) for (const f of readdirSync(cache)) if (f.startsWith(`${cniNetwork}-`)) rmSync(path.join(cache, f), { force: true });
      if (!cniCacheBefore) for (const d of [cache, '/var/lib/cni']) rmdirTree(d);
      // the k8s.io cgroups runc made for our tasks (empty now; rmdir refuses a cgroup in use)
      for (const d of cgroupParents()) if (!cgroupsBefore.has(d) && existsSync(d)) rmdirTree(d);
    },
  };
  return h;
}

/** mountinfo writes space, tab, newline and backslash in paths as \ooo. */
export const unescapeMountinfo = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** The overlay layers of a process's root mount, read from its mountinfo (test-side check). */
export function rootOverlay(pid: number): { upper: string; lower: string[]; dev: string } | undefined {
  const unesc = unescapeMountinfo;
  let found: { upper: string; lower: string[]; dev: string } | undefined;
  for (const line of readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n')) {
    const f = line.split(' ');
    const dash = f.indexOf('-', 6);
    if (f[4] !== '/' || dash < 0) continue;
    if (f[dash + 1] !== 'overlay') {
      found = undefined;
      continue;
    }
    const opts = (f[dash + 3] ?? '').split(',');
    const get = (k: string) => opts.filter((o) => o.startsWith(`${k}=`)).map((o) => o.slice(k.length + 1));
    found = {
      dev: f[2] ?? '',
      upper: unesc(get('upperdir')[0] ?? ''),
      lower: get('lowerdir').flatMap((v) => v.split(':')).filter(Boolean).map(unesc),
    };
  }
  return found;
}
