// sp_facts ENGINE NAME (scripts/get_container_ns.sh), in the node script the tools build, run
// under dash against live engines: docker, rootful podman, a private containerd through ctr,
// and crictl through the stand-in (answering from that containerd as containerd's CRI does,
// and in CRI-O's shape from podman, whose containers/storage layout CRI-O shares); engine
// containerd picks crictl when the node has it, else ctr. For each: the id (also from a
// 12-character prefix), the pid (the engine's, and the mount namespace a process inside the
// container sees), the state running → paused → stopped → removed, the layers and merged root
// as the engine itself says, a file the container wrote found in its upper dir, and names that
// try to inject.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS, type Config } from '../../lib/config.ts';
import { sh } from '../../lib/quote.ts';
import { utf8 } from '../../lib/wire.ts';
import { rootOverlay, startContainerd, unescapeMountinfo, type Containerd } from '../helpers/containerd.ts';
import { writeCrictlStandin } from '../helpers/crictl-standin.ts';
import { writeLayeredImage } from '../helpers/layered-image.ts';
import * as dk from '../helpers/docker.ts';
import { runSteps } from '../helpers/node-sh.ts';
import * as pm from '../helpers/podman.ts';
import { commandWorks, dockerUp, isRoot, missing } from '../helpers/prereq.ts';

const TAG = 'runtimes';

const skip = missing({
  root: isRoot,
  'docker engine': dockerUp,
  'podman with the overlay driver (apt-get install podman)': pm.podmanWorks,
  'containerd and ctr (apt-get install docker.io)': () => commandWorks('containerd', ['--version']) && commandWorks('ctr', ['--version']),
  dash: () => commandWorks('dash', ['-c', 'true']),
  'setpriv (util-linux)': () => commandWorks('setpriv', ['--version']),
});

type Facts =
  | { ok: true; id: string; state: string; pid: number; driver: string; upper: string; lower: string[]; merged: string }
  | { ok: false; why: string };

/** Settings a test passes to the node script: the config keys sp_facts reads. */
interface Env {
  crictl?: string;
  ctr?: string;
  address?: string;
  namespace?: string;
}

const cfgOf = (e: Env): Config => ({
  ...DEFAULTS,
  paths: { ...DEFAULTS.paths, crictl: e.crictl ?? '/nonexistent/crictl', ctr: e.ctr ?? 'ctr' },
  containerd: { address: e.address ?? '/nonexistent/containerd.sock', namespace: e.namespace ?? 'k8s.io' },
});

/**
 * Run `sp_facts ENGINE NAME` in a node script under dash; NAME is quoted by the sh template.
 * Each variable comes back as the last field of a record of its own (any byte but NUL).
 */
function facts(engine: string, name: string, env: Env): Facts {
  const vars = ['sp_engine', 'sp_id', 'sp_state', 'sp_pid', 'sp_driver', 'sp_upper', 'sp_lower', 'sp_merged'];
  const step = sh`if sp_facts ${engine} ${name}; then ` + vars.map((v) => `rec M 0 "$${v}"; `).join('') + 'else rec ERR 0 "$sp_why"; fi';
  const r = runSteps([step], { cfg: cfgOf(env), libs: ['get_container_ns'] });
  // engines warn on stderr (podman's cgroup notes): none of it may leak, into stdout or out
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  if (r.records[0]?.tag === 'ERR') return { ok: false, why: utf8(r.records[0].message) };
  const v = Object.fromEntries(r.records.map((rec, i) => [vars[i], rec.tag === 'M' ? utf8(rec.path) : '?']));
  if (r.records.length !== vars.length) throw new Error(`sp_facts: ${JSON.stringify(r.records)}`);
  // which engine answered: containerd is crictl when the node has it, else ctr
  expect(v.sp_engine).toBe(engine === 'containerd' ? (env.crictl && existsSync(env.crictl) ? 'crictl' : 'ctr') : engine);
  return { ok: true, id: v.sp_id!, state: v.sp_state!, pid: Number(v.sp_pid), driver: v.sp_driver!, upper: v.sp_upper!, lower: v.sp_lower!.split(':').filter(Boolean), merged: v.sp_merged! };
}

function ok(f: Facts): Extract<Facts, { ok: true }> {
  if (!f.ok) throw new Error(`sp_facts failed: ${f.why}`);
  return f;
}

const mntIno = (pid: number) => statSync(`/proc/${pid}/ns/mnt`).ino;
const isMountPoint = (dir: string) =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => unescapeMountinfo(l.split(' ')[4] ?? '') === dir);
const canon = (p: string) => realpathSync(p);

/** What the engine itself says about a live container, and how to drive it. */
interface Live {
  engine: 'docker' | 'podman' | 'ctr' | 'crictl' | 'containerd';
  env: Env;
  /** Start a container; returns the name to ask for and the engine's full id. */
  start(suffix: string): { name: string; id: string };
  exec(c: string, script: string): string;
  pid(c: string): number;
  /** Upper, lowers (topmost first) and merged root, as the engine (or the kernel's mount) says. */
  layers(c: string): { upper: string; lower: string[]; merged: string };
  pause(c: string): void;
  unpause(c: string): void;
  stop(c: string): void;
  remove(c: string): void;
  /** The engine's words for a container it does not know. */
  gone: RegExp;
}

let ctd: Containerd;
let ctrImage: string;
let podmanImage: string;
let tmp: string;
const ctrEnv = (): Env => ({ address: ctd.address, namespace: ctd.namespace });

/** A 64-hex-character id, as the CRI gives containerd containers. */
const hexId = () => randomBytes(32).toString('hex');

const docker: Live = {
  engine: 'docker',
  env: {},
  start(suffix) {
    const name = `sp-${TAG}-${process.pid}-${suffix}`;
    return { name, id: dk.runContainer(name, dk.ensureBusyboxImage()) };
  },
  exec: (c, s) => dk.exec(c, s),
  pid: (c) => Number(dk.docker('inspect', '--format', '{{.State.Pid}}', c)),
  layers(c) {
    const d = JSON.parse(dk.docker('inspect', '--format', '{{json .GraphDriver.Data}}', c));
    return { upper: d.UpperDir, lower: String(d.LowerDir).split(':'), merged: d.MergedDir };
  },
  pause: (c) => void dk.docker('pause', c),
  unpause: (c) => void dk.docker('unpause', c),
  stop: (c) => void dk.docker('stop', '-t', '0', c),
  remove: (c) => void dk.docker('rm', '-f', c),
  gone: /No such container/,
};

const podman: Live = {
  engine: 'podman',
  env: {},
  start(suffix) {
    const name = `sp-${TAG}-${process.pid}-${suffix}`;
    return { name, id: pm.runContainer(name, podmanImage) };
  },
  exec: (c, s) => pm.exec(c, s),
  pid: (c) => Number(pm.podman('inspect', '--format', '{{.State.Pid}}', c)),
  layers(c) {
    const d = JSON.parse(pm.podman('inspect', '--format', '{{json .GraphDriver.Data}}', c));
    return { upper: d.UpperDir, lower: String(d.LowerDir).split(':'), merged: d.MergedDir };
  },
  pause: pm.pause,
  unpause: pm.unpause,
  stop: pm.stop,
  remove: pm.remove,
  gone: /no such container/,
};

/** containerd: the task's pid from ctr, the layers from the kernel's mount of its root. */
function containerdLive(engine: 'ctr' | 'crictl' | 'containerd'): Live {
  return {
    engine,
    get env() {
      return engine === 'crictl' ? { ...ctrEnv(), crictl: writeCrictlStandin(path.join(tmp, 'ctr'), { backend: 'ctr', address: ctd.address }) } : ctrEnv();
    },
    start() {
      const id = hexId();
      ctd.run(id, ctrImage, 'sleep', '100000');
      return { name: id, id };
    },
    exec: (c, s) => ctd.exec(c, s),
    pid: (c) => ctd.task(c)?.pid ?? 0,
    layers(c) {
      const o = rootOverlay(ctd.task(c)!.pid)!;
      return { upper: canon(o.upper), lower: o.lower.map(canon), merged: ctd.rootfs(c) };
    },
    pause: (c) => ctd.pause(c),
    unpause: (c) => ctd.resume(c),
    stop(c) {
      ctd.kill(c);
      ctd.deleteTask(c); // what the CRI does after an exit: the container and snapshot stay
    },
    remove: (c) => ctd.remove(c),
    gone: engine === 'crictl' ? /NotFound/ : /ctr: no container '[^']*' in namespace k8s\.io/,
  };
}

/** CRI-O's shape (the stand-in's podman backend): podman drives, crictl answers. */
const crio: Live = {
  ...podman,
  engine: 'crictl',
  start(suffix) {
    const { id } = podman.start(suffix);
    return { name: id, id }; // the CRI knows ids, not names; podman takes either
  },
  get env() {
    return { crictl: writeCrictlStandin(path.join(tmp, 'crio'), { backend: 'podman' }) };
  },
  layers(c) {
    const l = podman.layers(c);
    return { ...l, lower: l.lower.map(canon) };
  },
  gone: /NotFound/,
};

const ENGINES: [string, string, () => Live][] = [
  ['docker', 'docker', () => docker],
  ['podman', 'podman', () => podman],
  ['containerd via ctr', 'ctr', () => containerdLive('ctr')],
  ['containerd via crictl (stand-in on the live containerd)', 'cri-ctd', () => containerdLive('crictl')],
  ['containerd on a node without crictl (→ ctr)', 'auto', () => containerdLive('containerd')],
  ['CRI-O shape via crictl (stand-in on podman storage)', 'cri-o', () => crio],
];

const CANARY = `sp-${TAG}-canary-${process.pid}`;
const HOSTILE = [
  `$(touch /tmp/${CANARY})`,
  `\`touch /tmp/${CANARY}\``,
  `x; touch /tmp/${CANARY}`,
  `x' "y`,
  '-a',
  '--help',
  '--format={{.Id}}',
  'new\nline',
  'tab\there',
  '*',
  '../../etc/passwd',
  '',
];

describe.skipIf(skip)('sp_facts_<engine> against live engines', () => {
  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), `sp-${TAG}-`));
    const image = dk.ensureBusyboxImage();
    podmanImage = pm.loadImage(image);
    ctd = await startContainerd(TAG);
    ctrImage = ctd.importImage(image);
  });
  afterAll(async () => {
    dk.cleanupContainers();
    pm.cleanupContainers();
    await ctd?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  describe.each(ENGINES)('%s', (_label, key, get) => {
    let live: Live;
    let c: { name: string; id: string };
    let written: string;

    beforeAll(() => {
      live = get();
      c = live.start(key);
      written = `sp-${TAG}-${process.pid}`;
      live.exec(c.name, `echo written > /tmp/${written}`);
    });

    it('running: id, pid, layers and merged root as the engine says', () => {
      const f = ok(facts(live.engine, c.name, live.env));
      expect(f.id).toBe(c.id);
      expect(f.state).toBe('running');
      expect(f.pid).toBe(live.pid(c.name));
      // the pid's mount namespace is the one a process inside the container has
      const inside = Number(live.exec(c.name, 'stat -Lc %i /proc/1/ns/mnt').trim());
      expect(mntIno(f.pid)).toBe(inside);
      expect(mntIno(f.pid)).not.toBe(mntIno(process.pid));
      expect(['overlay', 'overlay2']).toContain(f.driver);
      const want = live.layers(c.name);
      expect(f.upper).toBe(want.upper);
      expect(f.lower).toEqual(want.lower);
      expect(f.merged).toBe(want.merged);
      for (const d of [f.upper, ...f.lower, f.merged]) expect(statSync(d).isDirectory()).toBe(true);
      expect(isMountPoint(f.merged)).toBe(true);
      // what the container wrote is in its upper dir and in the merged root
      expect(readFileSync(path.join(f.upper, 'tmp', written), 'utf8')).toBe('written\n');
      expect(readFileSync(path.join(f.merged, 'tmp', written), 'utf8')).toBe('written\n');
    });

    it('a 12-character id prefix names the same container', () => {
      expect(ok(facts(live.engine, c.id.slice(0, 12), live.env)).id).toBe(c.id);
    });

    it('paused: state paused, same pid and layers', () => {
      const before = ok(facts(live.engine, c.name, live.env));
      live.pause(c.name);
      try {
        const f = ok(facts(live.engine, c.name, live.env));
        expect(f.state).toBe('paused');
        expect({ ...f, state: 'running' }).toEqual(before);
      } finally {
        live.unpause(c.name);
      }
      expect(ok(facts(live.engine, c.name, live.env)).state).toBe('running');
    });

    it('stopped: no pid, not mounted, the layers still there with what it wrote', () => {
      const before = ok(facts(live.engine, c.name, live.env));
      live.stop(c.name);
      const f = ok(facts(live.engine, c.name, live.env));
      expect(f.state).toBe('stopped');
      expect(f.pid).toBe(0);
      expect(f.merged).toBe('');
      expect(f.id).toBe(before.id);
      expect(f.upper).toBe(before.upper);
      expect(f.lower).toEqual(before.lower);
      expect(readFileSync(path.join(f.upper, 'tmp', written), 'utf8')).toBe('written\n');
    });

    it('removed: fails with one clear line', () => {
      live.remove(c.name);
      const f = facts(live.engine, c.name, live.env);
      expect(f.ok).toBe(false);
      if (f.ok) return;
      expect(f.why).toMatch(live.gone);
      expect(f.why).not.toMatch(/\n/);
    });

    it('hostile names fail cleanly and inject nothing', () => {
      for (const name of HOSTILE) {
        const f = facts(live.engine, name, live.env);
        expect(f.ok, JSON.stringify(name)).toBe(false);
        if (!f.ok) {
          expect(f.why).not.toBe('');
          expect(f.why).not.toMatch(/[\n\t]/);
        }
      }
      expect(existsSync(`/tmp/${CANARY}`)).toBe(false);
    });
  });

  it('ctr: a container killed but whose task is not yet deleted is stopped, still mounted', () => {
    const id = hexId();
    ctd.run(id, ctrImage, 'sleep', '100000');
    try {
      ctd.kill(id);
      const f = ok(facts('ctr', id, ctrEnv()));
      expect(f.state).toBe('stopped');
      expect(f.pid).toBe(0);
      expect(f.merged).toBe(ctd.rootfs(id));
    } finally {
      ctd.remove(id);
    }
  });

  it('ctr: an ambiguous prefix and a too-short one are refused', () => {
    const a = `sp${TAG.replace(/-/g, '')}${process.pid}aaaaaaaa-one`;
    const b = `sp${TAG.replace(/-/g, '')}${process.pid}aaaaaaaa-two`;
    ctd.run(a, ctrImage, 'sleep', '100000');
    ctd.run(b, ctrImage, 'sleep', '100000');
    try {
      const common = a.slice(0, a.length - 4);
      const amb = facts('ctr', common, ctrEnv());
      expect(amb.ok).toBe(false);
      if (!amb.ok) expect(amb.why).toMatch(/matches 2 containers/);
      expect(ok(facts('ctr', a, ctrEnv())).id).toBe(a);
      const short = facts('ctr', a.slice(0, 11), ctrEnv());
      expect(short.ok).toBe(false);
    } finally {
      ctd.remove(a);
      ctd.remove(b);
    }
  });

  it('mountinfo escapes decoded: a containerd whose root and state hold a space and a tab', async () => {
    const odd = await startContainerd(`${TAG}-odd`, { oddPaths: true });
    try {
      const id = hexId();
      odd.run(id, odd.importImage(dk.ensureBusyboxImage()), 'sleep', '100000');
      odd.exec(id, 'echo w > /tmp/w');
      const pid = odd.task(id)!.pid;
      // the kernel writes them as \040 and \011, in the container's root mount and the host's
      expect(readFileSync(`/proc/${pid}/mountinfo`, 'utf8')).toMatch(/root\\040with\\040space\\011and\\040tab/);
      expect(readFileSync('/proc/self/mountinfo', 'utf8')).toMatch(/state\\040with\\040space\\011and\\040tab/);
      const o = rootOverlay(pid)!;
      const standin = writeCrictlStandin(path.join(tmp, 'odd'), { backend: 'ctr', address: odd.address });
      for (const engine of ['ctr', 'crictl']) {
        const f = ok(facts(engine, id, { address: odd.address, crictl: standin }));
        expect(f.upper).toContain(' with space\tand tab/');
        expect(f.upper).toBe(canon(o.upper));
        expect(f.lower).toEqual(o.lower.map(canon));
        expect(f.merged).toBe(odd.rootfs(id));
        expect(readFileSync(path.join(f.upper, 'tmp/w'), 'utf8')).toBe('w\n');
        expect(readFileSync(path.join(f.merged, 'tmp/w'), 'utf8')).toBe('w\n');
        // a FACTS record cannot carry a tab inside a field: the tools say so in one line
        const r = runSteps([sh`sp_inspect 0 ${engine} ${id}`], { cfg: cfgOf({ address: odd.address, crictl: standin }), libs: ['get_container_ns'] });
        expect(r.records.map((x) => Object.values(x))).toEqual([['ERR', '0', `a layer path of container ${id} holds a tab or a newline: not supported`]]);
      }
    } finally {
      await odd.stop();
    }
  });

  it('71 layers: engines mount with relative lowerdir paths; every road still finds each layer, in order', () => {
    const EXTRA = 70;
    const tar = writeLayeredImage(dk.ensureBusyboxImage(), `sneakpeek-${TAG}/layers:${process.pid}`, EXTRA, tmp);
    const pimg = pm.loadArchive(tar);
    const cid = hexId();
    ctd.run(cid, ctd.importArchive(tar), 'sleep', '100000');
    try {
      const pname = `sp-${TAG}-${process.pid}-layers`;
      const pid = pm.runContainer(pname, pimg);
      // the mount data no longer fits a page: containers/storage mounts from its home with
      // l/<link> lowers and a relative upper; containerd compacts its snapshot paths
      const podmanRoot = readFileSync(`/proc/${podman.pid(pname)}/mountinfo`, 'utf8').split('\n').find((l) => l.split(' ')[4] === '/')!;
      expect(podmanRoot).toMatch(/lowerdir=l\/[A-Z0-9]+:/);
      expect(podmanRoot).toMatch(/upperdir=[0-9a-f]{64}\/diff,/);
      const ctrRoot = readFileSync(`/proc/${ctd.task(cid)!.pid}/mountinfo`, 'utf8').split('\n').find((l) => l.split(' ')[4] === '/')!;
      expect(ctrRoot).toMatch(/lowerdir=\d+\/fs:/);
      const roads: [string, string, Env][] = [
        ['ctr', cid, ctrEnv()],
        ['crictl', cid, { ...ctrEnv(), crictl: writeCrictlStandin(path.join(tmp, 'ctr'), { backend: 'ctr', address: ctd.address }) }],
        ['podman', pname, {}],
        ['crictl', pid, { crictl: writeCrictlStandin(path.join(tmp, 'crio'), { backend: 'podman' }) }],
      ];
      for (const [engine, name, env] of roads) {
        const f = ok(facts(engine, name, env));
        expect(f.lower, `${engine} ${name}`).toHaveLength(EXTRA + 1);
        // topmost first: the newest layer's file, down to the base layer with busybox
        f.lower.slice(0, EXTRA).forEach((dir, i) => {
          const n = String(EXTRA - i).padStart(3, '0');
          expect(readFileSync(path.join(dir, 'layers', n), 'utf8')).toBe(`${n}\n`);
        });
        expect(statSync(path.join(f.lower[EXTRA]!, 'bin/busybox')).isFile()).toBe(true);
        expect(isMountPoint(f.merged)).toBe(true);
        expect(statSync(f.upper).isDirectory()).toBe(true);
      }
    } finally {
      ctd.remove(cid);
      pm.cleanupContainers();
      pm.podmanTry('rmi', pimg);
    }
  });

  it('ctr: a missing socket is one clear line, at once', () => {
    const t0 = Date.now();
    const f = facts('ctr', 'anything', { address: path.join(tmp, 'no.sock') });
    expect(f).toEqual({ ok: false, why: `ctr: no containerd socket at ${path.join(tmp, 'no.sock')}` });
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it('engine containerd: crictl answers when the node has it, ctr when it does not (same facts)', () => {
    const id = hexId();
    ctd.run(id, ctrImage, 'sleep', '100000');
    try {
      const standin = writeCrictlStandin(path.join(tmp, 'auto'), { backend: 'ctr', address: ctd.address });
      const viaCrictl = ok(facts('containerd', id, { ...ctrEnv(), crictl: standin })); // asserts sp_engine = crictl
      const viaCtr = ok(facts('containerd', id, { ...ctrEnv(), crictl: path.join(tmp, 'auto', 'no-crictl') })); // … = ctr
      expect(viaCrictl).toEqual(viaCtr);
      expect(viaCtr).toMatchObject({ id, state: 'running', pid: ctd.task(id)!.pid });
    } finally {
      ctd.remove(id);
    }
  });

  it('fswatch refuses an UpperDir under /tmp: its unit (PrivateTmp=yes) would watch an empty dir', () => {
    const id = hexId();
    ctd.run(id, ctrImage, 'sleep', '100000');
    try {
      expect(ctd.root.startsWith(`${os.tmpdir()}/`)).toBe(true);
      const r = runSteps([sh`sp_facts ctr ${id} && sp_fswatch_dirs 0 0`], { cfg: cfgOf(ctrEnv()) });
      expect(r.records.map((x) => Object.values(x))).toEqual([['ERR', '0', expect.stringMatching(/^UpperDir \/tmp\/\S+ is under \/tmp or \/var\/tmp, which fswatch@\.service cannot see \(PrivateTmp=yes\)$/)]]);
    } finally {
      ctd.remove(id);
    }
  });

  it('podman run by a user other than root (rootless podman) is refused with one clear line', () => {
    const c = podman.start('rootless');
    try {
      // the node script as nobody: what `sudo: false` with a non-root ssh user gives
      const r = runSteps([sh`sp_inspect 0 podman ${c.name}`], { cfg: cfgOf({}), libs: ['get_container_ns'], shell: 'setpriv --reuid=65534 --regid=65534 --clear-groups dash' });
      expect(r.records.map((x) => Object.values(x))).toEqual([['ERR', '0', "podman: rootless podman is not supported (this node script runs as uid 65534): sneakpeek reads root's podman; set sudo: true or ssh as root"]]);
      expect(r.stderr).toBe('');
    } finally {
      podman.remove(c.name);
    }
  });

  it('crictl: a label that looks like a "pid"/"state" pair cannot fake either', () => {
    const id = hexId();
    ctd.runWith(['--label', 'x="pid": 1, "state": "CONTAINER_EXITED", "id": "evil"'], id, ctrImage, 'sleep', '100000');
    try {
      const f = ok(facts('crictl', id, { ...ctrEnv(), crictl: writeCrictlStandin(path.join(tmp, 'ctr'), { backend: 'ctr', address: ctd.address }) }));
      expect(f).toMatchObject({ id, state: 'running', pid: ctd.task(id)!.pid });
    } finally {
      ctd.remove(id);
    }
  });
});
