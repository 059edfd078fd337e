// --status and --reconcile on real parts (issue #12): two ssh "nodes" (our sshd on 127.0.0.2 and
// 127.0.0.3), each with its OWN systemd (a private one each), its own unit and env dirs, the one
// real docker engine behind both, the real bpftool on this kernel's bpffs, bpftrace tracing for
// real. Node B is a mount namespace of its own: its ssh sessions (ForceCommand nsenter) and its
// systemd see B's unit and env dirs at the very paths where node A has its own, as two machines
// would. Containers are removed, added and restarted between reconcile runs, including the
// recycled-inode case (`docker stop web; docker run other; docker start web` gives other the
// inode web had), with --status before and after every step, read only each time, and one ssh
// session per node per command. Then two overlapping runs, a busy node, and the shipped
// sneakpeek-reconcile@.service/.timer run by a real (private) systemd on its own schedule.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS, parseConfig } from '../../lib/config.ts';
import { hexBytesToInode, hostOrder } from '../../lib/endian.ts';
import { RECONCILE_DEFAULTS, renderReconcileService, renderReconcileTimer } from '../../lib/reconcile-units.ts';
import { ROOT, runTool, runToolAsync, type Run } from '../helpers/cli.ts';
import { startContainerd, type Containerd } from '../helpers/containerd.ts';
import { cleanupContainers, docker, dockerTry, ensureBusyboxImage, runContainer } from '../helpers/docker.ts';
import { pod } from '../helpers/kube.ts';
import { dockerUp, EBPF, isRoot, missing } from '../helpers/prereq.ts';
import { sshdInstalled, startSshd, type Sshd } from '../helpers/sshd.ts';
import { startPrivateSystemd, systemdAvailable, verifyInstance, type PrivateSystemd } from '../helpers/systemd.ts';

const skip = missing({
  root: isRoot,
  docker: dockerUp,
  'openssh-server': sshdInstalled,
  ...EBPF,
  'systemd, systemd-analyze, nsenter, unshare': systemdAvailable,
  'flock (util-linux)': () => existsSync('/usr/bin/flock'),
  'containerd, ctr': () => existsSync('/usr/bin/containerd') && existsSync('/usr/bin/ctr'),
});

const A = '127.0.0.2';
const B = '127.0.0.3';
const IMAGE = 'sneakpeek-test/busybox:1';
const name = (what: string) => `sp-lifecycle-${what}-${process.pid}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'sp-lifecycle-'));
const envA = path.join(tmp, 'env'); // the config's envDir: node A's own; node B has envB there
const envB = path.join(tmp, 'envB');
const logDir = path.join(tmp, 'log');
const lockFile = path.join(tmp, 'sneakpeek.lock');
const podsFile = path.join(tmp, 'pods.json');
let sdA: PrivateSystemd;
let sdB: PrivateSystemd;
let sshd: Sshd;
let holder: ChildProcess | undefined;
let cfgFile: string;
const [web, db, api, other, fresh] = ['web', 'db', 'api', 'other', 'fresh'].map(name) as [string, string, string, string, string];
/** Container name → [full id, node]. */
const placed = new Map<string, [string, string]>();
const ids = new Set<string>();

const short = (c: string) => placed.get(c)![0].slice(0, 12);
const inodeOf = (c: string) => execFileSync('stat', ['-Lc', '%i', `/proc/${docker('inspect', '-f', '{{.State.Pid}}', c)}/ns/mnt`], { encoding: 'utf8' }).trim();
const mapOf = (id: string) => `/sys/fs/bpf/mnt_ns_${id}`;
const keysOf = (file: string): string[] =>
  (JSON.parse(execFileSync('bpftool', ['-j', 'map', 'dump', 'pinned', file], { encoding: 'utf8' })) as { key: string[] }[]).map((e) => hexBytesToInode(e.key, hostOrder()).toString());
const sdOf = (node: string) => (node === A ? sdA : sdB);
const envOf = (node: string) => (node === A ? envA : envB);
const unit = (c: string) => `execsnoop@${short(c)}.service`;
const active = (c: string) => sdOf(placed.get(c)![1]).systemctl('is-active', unit(c)).stdout.trim();
const mainPid = (c: string) => sdOf(placed.get(c)![1]).systemctl('show', '-p', 'MainPID', '--value', unit(c)).stdout.trim();
const logOf = (c: string) => path.join(logDir, `execsnoop-${short(c)}.log`);
const logLines = (c: string) => (existsSync(logOf(c)) ? readFileSync(logOf(c), 'utf8').split('\n').filter(Boolean) : []);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sorted = (text: string) => text.split('\n').filter(Boolean).sort();

/** Start a container on a node (it is the one docker for both; the pod list says where it runs). */
function place(c: string, node: string): void {
  const id = runContainer(c, IMAGE);
  placed.set(c, [id, node]);
  ids.add(id.slice(0, 12));
}

/** The cluster as kubectl would list it: these containers' pods, each on its node. */
function writePods(containers: string[]): void {
  writeFileSync(podsFile, JSON.stringify({
    kind: 'PodList',
    items: containers.map((c) => pod({ name: `${c}-0`, hostIP: placed.get(c)![1], containers: [{ name: 'main', id: docker('inspect', '-f', '{{.Id}}', c) }] })),
  }));
}

const sneakpeek = (args: string[], cfg = cfgFile): Run => runTool('sneakpeek', ['-t', 'procmon', '--pods-file', podsFile, ...args], { env: { SNEAKPEEK_CONFIG: cfg } });
const status = (...args: string[]) => sneakpeek(['--status', ...args]);
const reconcile = (...args: string[]) => sneakpeek(['--reconcile', ...args]);

/** Everything sneakpeek could change on both nodes: unit and env dirs, maps, units and their processes, the lock file. */
function snapshot(): string {
  const tree = (dir: string) => (existsSync(dir) ? execFileSync('find', [dir, '-printf', '%p %y %s %m %T@\\n'], { encoding: 'utf8' }).split('\n').sort().join('\n') : `${dir} absent`);
  const units = (sd: PrivateSystemd) => {
    const list = sd.systemctl('list-units', '--all', '--plain', '--no-legend', '--full', 'execsnoop@*').stdout;
    const names = list.split('\n').map((l) => l.split(/\s+/)[0]).filter((u): u is string => !!u);
    return [list, ...names.map((u) => sd.systemctl('show', '-p', 'MainPID', '-p', 'ExecMainStartTimestampMonotonic', '-p', 'NRestarts', u).stdout)].join('\n');
  };
  const maps = readdirSync('/sys/fs/bpf').filter((f) => f.startsWith('mnt_ns_') && ids.has(f.slice(7))).sort()
    .map((f) => `${f} ${execFileSync('bpftool', ['-j', 'map', 'show', 'pinned', mapOf(f.slice(7))], { encoding: 'utf8' })} ${keysOf(mapOf(f.slice(7))).join(',')}`);
  return [tree(sdA.unitDir), tree(sdB.unitDir), tree(envA), tree(envB), units(sdA), units(sdB), ...maps, existsSync(lockFile) ? tree(lockFile) : 'no lock file'].join('\n');
}

/** --status, proven read only: both nodes exactly as before; one ssh session per node. */
function readOnlyStatus(...args: string[]): Run {
  const before = snapshot();
  const mark = sshd.mark();
  const r = status(...args);
  expect(Object.fromEntries(sshd.sessions(mark))).toEqual({ [A]: 1, [B]: 1 });
  expect(snapshot()).toBe(before);
  return r;
}

/** The status line of container c. */
const line = (c: string, state: string, why = '') => `${placed.get(c)![1]},${short(c)} ${unit(c)} ${state}${why ? ` ${why}` : ''}`;

/** Wait until the unit's log has, after line `from`, a line matching `re`. */
async function waitLog(c: string, from: number, re: RegExp, ms = 30_000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(200)) if (logLines(c).slice(from).some((l) => re.test(l))) return true;
  return false;
}

/** Exec a marker in container c and wait until `watcher`'s tracer logs it (or `ms` pass). */
async function execSeen(c: string, marker: string, watcher: string, from: number, ms = 20_000): Promise<boolean> {
  dockerTry('exec', c, 'ls', `/${marker}`);
  // execsnoop.bt prints each argument on a line of its own: `TIME PID arg 1 0 /marker`
  return waitLog(watcher, from, new RegExp(`\targ\t1\t0\t/${marker}$`), ms);
}

beforeAll(async () => {
  if (skip) return;
  ensureBusyboxImage();
  for (const d of [envA, envB, logDir]) mkdirSync(d, { recursive: true });
  // A file in each env root: the nodes' own rmdir of an empty envDir must not undo B's bind.
  for (const d of [envA, envB]) writeFileSync(path.join(d, '.keep-sp-lifecycle'), '');
  sdA = await startPrivateSystemd('lifecycle-a');
  sdB = await startPrivateSystemd('lifecycle-b', { binds: [[envB, envA]] });
  // Node B's sessions: a mount namespace where B's unit dir and env dir are at A's paths.
  holder = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c',
    `mount --bind '${sdB.unitDir}' '${sdA.unitDir}' && mount --bind '${envB}' '${envA}' && exec sleep 100000`], { stdio: 'ignore', detached: true });
  for (let i = 0; i < 100 && !readFileSync(`/proc/${holder.pid}/cmdline`, 'utf8').startsWith('sleep'); i++) await sleep(50);
  const pathOf = (sd: PrivateSystemd) => `PATH=${sd.binDir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;
  sshd = await startSshd({
    addresses: [A, B],
    sshdConfig: [
      `Match LocalAddress ${A}`, `  SetEnv ${pathOf(sdA)}`,
      `Match LocalAddress ${B}`, `  SetEnv ${pathOf(sdB)}`, `  ForceCommand nsenter -t ${holder.pid} -m -- /bin/sh -c "$SSH_ORIGINAL_COMMAND"`,
    ].join('\n'),
  });
  cfgFile = sshd.writeConfig({
    sudo: false,
    concurrency: 2,
    backend: 'bpftrace',
    unitDir: sdA.unitDir,
    envDir: envA,
    log: { target: 'file', dir: logDir },
    lock: { file: lockFile, wait: 20 },
  });
  place(name('web'), A);
  place(name('db'), A);
  place(name('api'), B);
  writePods([name('web'), name('db'), name('api')]);
}, 120_000);

afterAll(async () => {
  cleanupContainers();
  dockerTry('rm', '-f', other); // renamed from a try's name

  await sdA?.stop();
  await sdB?.stop();
  if (holder?.pid) process.kill(holder.pid, 'SIGKILL');
  await sshd?.stop();
  for (const id of ids) rmSync(mapOf(id), { force: true });
  rmSync(tmp, { recursive: true, force: true });
});


describe.skipIf(skip)('--status and --reconcile on two ssh nodes, real docker, real bpftrace, a systemd each', { timeout: 180_000 }, () => {
  it('before anything: every selected container is missing; exit 1; read only', () => {
    const r = readOnlyStatus();
    expect(sorted(r.stdout), r.stderr).toEqual([line(web, 'missing', 'not set up'), line(db, 'missing', 'not set up'), line(api, 'missing', 'not set up')].sort());
    expect(r.stderr).toBe('3 missing\n');
    expect(r.code).toBe(1);
  });

  it('the first --reconcile starts them, one session per node; then --status: all active, exit 0', async () => {
    const mark = sshd.mark();
    const r = reconcile();
    expect(sorted(r.stdout), r.stderr).toEqual([line(web, 'started', 'missing'), line(db, 'started', 'missing'), line(api, 'started', 'missing')].sort());
    expect(r.stderr).toBe('3 started, 0 restarted, 0 removed, 0 unchanged\n');
    expect(r.code).toBe(0);
    expect(Object.fromEntries(sshd.sessions(mark))).toEqual({ [A]: 1, [B]: 1 });
    for (const c of [web, db, api]) {
      expect(active(c)).toBe('active');
      expect(keysOf(mapOf(short(c)))).toEqual([inodeOf(c)]);
      expect(await waitLog(c, 0, new RegExp(`^Tracing exec in mount namespace ${inodeOf(c)}\\.\\.\\.`))).toBe(true);
    }
    // Each node has its own: A's env dir holds web and db, B's holds api.
    expect(readdirSync(path.join(envA, 'execsnoop')).sort()).toEqual([`${short(db)}.env`, `${short(web)}.env`].sort());
    expect(readdirSync(path.join(envB, 'execsnoop'))).toEqual([`${short(api)}.env`]);
    const s = readOnlyStatus();
    expect(sorted(s.stdout)).toEqual([line(web, 'active'), line(db, 'active'), line(api, 'active')].sort());
    expect(s.stderr).toBe('3 active\n');
    expect(s.code).toBe(0);
  });

  it('a second --reconcile changes nothing: no line, same processes, same maps', () => {
    const before = snapshot();
    const r = reconcile();
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('0 started, 0 restarted, 0 removed, 3 unchanged\n');
    expect(r.code).toBe(0);
    expect(snapshot()).toBe(before);
  });

  it('the recycled inode: web restarted, and another container now has the inode web had; status says stale, from the engine; reconcile restarts web\'s tracer with its new inode, and it sees web, not other', async () => {
    // docker stop web; docker run other; docker start web — until the kernel hands web's freed
    // inode to other. The kernel gives the lowest free number, so it often does at once; on a
    // busy machine a lower number freed by someone else goes first. A try that missed keeps its
    // container until the end (removing it would free its number: the next try would get it),
    // and web's tracer is brought up to date before the next try, so that `was` is always the
    // inode it watches.
    let was = '';
    const missed: string[] = [];
    for (let i = 0; i < 12; i++) {
      const tryName = `${other}-try${i}`;
      if (i > 0) {
        expect(reconcile().code).toBe(0);
        expect(await waitLog(web, 0, new RegExp(`^Tracing exec in mount namespace ${inodeOf(web)}\\.\\.\\.`))).toBe(true);
      }
      was = inodeOf(web);
      expect(keysOf(mapOf(short(web)))).toEqual([was]);
      docker('stop', '-t', '0', web);
      runContainer(tryName, IMAGE);
      docker('start', web);
      if (inodeOf(tryName) === was) {
        docker('rename', tryName, other);
        placed.set(other, [docker('inspect', '-f', '{{.Id}}', other), A]);
        ids.add(short(other));
        break;
      }
      missed.push(tryName);
    }
    for (const m of missed) dockerTry('rm', '-f', m);
    expect(placed.has(other), `no recycled inode in ${missed.length} tries`).toBe(true);
    expect(inodeOf(other)).toBe(was);
    const now = inodeOf(web);
    expect(now).not.toBe(was);
    // The harm, for real: web's tracer (filtering on inode `was`) reports other's execs as web's.
    const fromWeb = logLines(web).length;
    expect(await execSeen(other, 'sp-lifecycle-other-before', web, fromWeb), `web's log: ${logLines(web).slice(-5).join(' | ')}`).toBe(true);

    writePods([web, db, api, other]);
    const s = readOnlyStatus();
    expect(sorted(s.stdout)).toEqual([
      line(web, 'stale', `set up for mount namespace ${was}, the container's is now ${now}; map holds ${was}, the container's mount namespace is ${now}`),
      line(db, 'active'), line(api, 'active'), line(other, 'missing', 'not set up'),
    ].sort());
    expect(s.stderr, s.stdout).toBe('2 active, 1 stale, 1 missing\n');
    expect(s.code).toBe(1);

    const pidBefore = mainPid(web);
    const r = reconcile();
    expect(sorted(r.stdout), r.stderr).toEqual([line(web, 'restarted', `stale: mount namespace ${was} → ${now}`), line(other, 'started', 'missing')].sort());
    expect(r.stderr).toBe('1 started, 1 restarted, 0 removed, 2 unchanged\n');
    expect(r.code).toBe(0);
    expect(mainPid(web)).not.toBe(pidBefore);
    expect(keysOf(mapOf(short(web)))).toEqual([now]);
    expect(keysOf(mapOf(short(other)))).toEqual([was]);
    expect(readFileSync(path.join(envA, 'execsnoop', `${short(web)}.env`), 'utf8')).toContain(`\nSNEAKPEEK_MNTNS_INODE=${now}\n`);
    const from = logLines(web).length;
    // (the restarted unit's first lines may come after `from`: wait for its start line among them, or before)
    expect(await waitLog(web, fromWeb, new RegExp(`^Tracing exec in mount namespace ${now}\\.\\.\\.`))).toBe(true);
    expect(await waitLog(other, 0, new RegExp(`^Tracing exec in mount namespace ${was}\\.\\.\\.`))).toBe(true);
    const fromOther = logLines(other).length;
    expect(await execSeen(web, 'sp-lifecycle-web-after', web, from)).toBe(true);
    expect(await execSeen(other, 'sp-lifecycle-other-after', other, fromOther)).toBe(true);
    await sleep(1000);
    expect(logLines(web).slice(from).filter((l) => l.includes('sp-lifecycle-other-after'))).toEqual([]);
    expect(logLines(other).slice(fromOther).filter((l) => l.includes('sp-lifecycle-web-after'))).toEqual([]);

    const after = readOnlyStatus();
    expect(after.stderr).toBe('4 active\n');
    expect(after.code).toBe(0);
  });

  it('a container removed and one added: the removed one\'s instance is an orphan (found on the node, not in the pod list), then removed with its map and env file', () => {
    const dbId = short(db);
    dockerTry('rm', '-f', db);
    place(fresh, B);
    writePods([web, api, other, fresh]);
    const s = readOnlyStatus();
    expect(s.stdout).toContain(`${A},${dbId} execsnoop@${dbId}.service orphan container gone (docker: `);
    expect(s.stdout).toContain(`${line(fresh, 'missing', 'not set up')}\n`);
    expect(s.stderr).toBe('3 active, 1 missing, 1 orphan\n');
    expect(s.code).toBe(1);

    const r = reconcile();
    const out = sorted(r.stdout);
    expect(out).toHaveLength(2);
    expect(out).toContain(line(fresh, 'started', 'missing'));
    expect(out.find((l) => l.startsWith(`${A},${dbId} `))).toMatch(new RegExp(`^${A.replace(/\./g, '\\.')},${dbId} execsnoop@${dbId}\\.service removed orphan: container gone \\(.*No such container`));
    expect(r.stderr).toBe('1 started, 0 restarted, 1 removed, 3 unchanged\n');
    expect(r.code).toBe(0);
    expect(existsSync(mapOf(dbId))).toBe(false);
    expect(existsSync(path.join(envA, 'execsnoop', `${dbId}.env`))).toBe(false);
    expect(sdA.systemctl('is-active', `execsnoop@${dbId}.service`).stdout.trim()).toBe('inactive');
    const after = readOnlyStatus();
    expect(sorted(after.stdout)).toEqual([line(web, 'active'), line(api, 'active'), line(other, 'active'), line(fresh, 'active')].sort());
    expect(after.code).toBe(0);
  });

  it('a plain docker restart: status says what the engine says (the same inode by luck, or stale), reconcile makes it current', () => {
    const was = inodeOf(api);
    docker('restart', '-t', '0', api);
    const now = inodeOf(api);
    const s = readOnlyStatus();
    const want = now === was ? line(api, 'active') : line(api, 'stale', `set up for mount namespace ${was}, the container's is now ${now}; map holds ${was}, the container's mount namespace is ${now}`);
    expect(s.stdout.split('\n')).toContain(want);
    const r = reconcile();
    expect(r.stdout).toBe(now === was ? '' : `${line(api, 'restarted', `stale: mount namespace ${was} → ${now}`)}\n`);
    expect(r.code).toBe(0);
    expect(keysOf(mapOf(short(api)))).toEqual([now]);
    expect(readOnlyStatus().code).toBe(0);
  });

  it('a unit stopped by hand is inactive; a unit that keeps failing is failed, with its last log line', async () => {
    sdA.systemctl('stop', unit(other));
    // A program that cannot load: bpftrace exits, Restart=on-failure tries again, then gives up.
    const env = path.join(envB, 'execsnoop', `${short(fresh)}.env`);
    const text = readFileSync(env, 'utf8');
    writeFileSync(env, text.replace(/SNEAKPEEK_BACKEND=bpftrace/, 'SNEAKPEEK_BACKEND=dtrace'));
    sdB.systemctl('restart', unit(fresh));
    // Restart=on-failure tries 5 times in 60 s (2 s apart), then the unit stays failed.
    for (let i = 0; i < 300 && active(fresh) !== 'failed'; i++) await sleep(100);
    expect(active(fresh)).toBe('failed');
    const s = readOnlyStatus();
    expect(s.stdout.split('\n')).toContain(line(other, 'inactive', 'unit inactive (dead)'));
    expect(s.stdout.split('\n')).toContain(line(fresh, 'failed', "unit failed; last log: execsnoop@: unknown SNEAKPEEK_BACKEND 'dtrace' (bcc or bpftrace)"));
    expect(s.code).toBe(1);
    const r = reconcile();
    expect(sorted(r.stdout), r.stderr).toEqual([line(other, 'started', 'was inactive'), line(fresh, 'restarted', 'was failed')].sort());
    expect(r.code).toBe(0);
    expect(readFileSync(env, 'utf8')).toBe(text);
    expect(readOnlyStatus().code).toBe(0);
  });

  it('two reconcile runs that overlap take turns on each node: every change is made once, by one of them', async () => {
    sdA.systemctl('stop', unit(web));
    sdB.systemctl('stop', unit(api));
    const [r1, r2] = await Promise.all([runToolAsync('sneakpeek', ['-t', 'procmon', '--pods-file', podsFile, '--reconcile'], { env: { SNEAKPEEK_CONFIG: cfgFile } }),
      runToolAsync('sneakpeek', ['-t', 'procmon', '--pods-file', podsFile, '--reconcile'], { env: { SNEAKPEEK_CONFIG: cfgFile } })]);
    expect([r1.code, r2.code]).toEqual([0, 0]);
    expect(sorted(r1.stdout + r2.stdout)).toEqual([line(web, 'started', 'was inactive'), line(api, 'started', 'was inactive')].sort());
    const started = (r: Run) => Number(/^(\d+) started, 0 restarted, 0 removed, (\d+) unchanged\n$/.exec(r.stderr)?.[1]);
    expect(started(r1) + started(r2)).toBe(2);
    expect([active(web), active(api)]).toEqual(['active', 'active']);
  });

  it('a node whose lock another run holds: the second run waits for it; past lock.wait it says busy, changes nothing and exits 0', async () => {
    const busyCfg = sshd.writeConfig({ sudo: false, concurrency: 2, backend: 'bpftrace', unitDir: sdA.unitDir, envDir: envA, log: { target: 'file', dir: logDir }, lock: { file: lockFile, wait: 1 } }, 'busy.yaml');
    // flock and its sleep in a process group of their own, ended together (the sleep holds the lock too).
    const hold = (s: number) => spawn('flock', [lockFile, 'sleep', String(s)], { stdio: 'ignore', detached: true });
    const release = (p: ChildProcess) => process.kill(-p.pid!, 'SIGKILL');
    sdA.systemctl('stop', unit(web));
    let h = hold(30);
    await sleep(500);
    const r = sneakpeek(['--reconcile'], busyCfg);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`^sneakpeek: ${A.replace(/\./g, '\\.')}: busy: another sneakpeek run holds ${lockFile} \\(waited 1 s\\); nothing changed here$`, 'm'));
    expect(r.stderr.trimEnd().split('\n').pop()).toBe('0 started, 0 restarted, 0 removed, 0 unchanged, 2 nodes busy (left for the next run)');
    expect(r.code).toBe(0);
    expect(active(web)).toBe('inactive');
    release(h);
    // Held for 3 s: a run with lock.wait 20 waits, then does the work.
    h = hold(3);
    await sleep(300);
    const t0 = Date.now();
    const w = reconcile();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2500);
    expect(w.stdout).toBe(`${line(web, 'started', 'was inactive')}\n`);
    expect(w.code).toBe(0);
    release(h);
  });

  it('an engine that does not answer concludes nothing: unknown, never orphan, and reconcile removes nothing', () => {
    const noEngine = sshd.writeConfig({ sudo: false, concurrency: 2, backend: 'bpftrace', unitDir: sdA.unitDir, envDir: envA, log: { target: 'file', dir: logDir },
      lock: { file: lockFile, wait: 20 }, paths: { docker: '/nonexistent/sp-lifecycle/docker' } }, 'no-engine.yaml');
    const s = sneakpeek(['--status'], noEngine);
    // Each selected container is an error (the engine cannot say which it is); each instance found is unknown, none an orphan.
    const notFound = (l: string) => l.replace(/ sh: \d+: /, ' sh: N: ');
    expect(sorted(s.stdout).map(notFound)).toEqual([web, other, api, fresh].map((c) => line(c, 'unknown', 'docker did not answer: sh: N: /nonexistent/sp-lifecycle/docker: not found')).sort());
    expect(s.stderr.split('\n').map(notFound).filter((l) => l.endsWith(': sh: N: /nonexistent/sp-lifecycle/docker: not found'))).toHaveLength(4);
    expect(s.stderr.trimEnd().split('\n').pop()).toBe('4 unknown, 4 failed to look at');
    expect(s.code).toBe(1);
    // Without a selection on node B: its instances are unknown.
    writeFileSync(path.join(tmp, 'only-a.json'), readFileSync(podsFile, 'utf8').replace(/"hostIP":"127\.0\.0\.3"/g, '"hostIP":"127.0.0.2"'));
    const before = snapshot();
    const r = runTool('sneakpeek', ['-t', 'procmon', '--pods-file', path.join(tmp, 'only-a.json'), '-a', B, '--reconcile'], { env: { SNEAKPEEK_CONFIG: noEngine } });
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`^sneakpeek: ${B.replace(/\./g, '\\.')},${short(api)}: left as it is: docker did not answer: .*not found$`, 'm'));
    expect(r.stderr.trimEnd().split('\n').pop()).toBe('0 started, 0 restarted, 0 removed, 0 unchanged, 2 failed');
    expect(r.code).toBe(1);
    expect(snapshot()).toBe(before);
  });

  it('-a NODE with no selected pod there still looks at that node: its instances show (here: running, not selected)', () => {
    writeFileSync(path.join(tmp, 'only-a.json'), JSON.stringify({ kind: 'PodList', items: [] }));
    const mark = sshd.mark();
    const r = runTool('sneakpeek', ['-t', 'procmon', '--pods-file', path.join(tmp, 'only-a.json'), '-a', B, '--status'], { env: { SNEAKPEEK_CONFIG: cfgFile } });
    expect(sorted(r.stdout), r.stderr).toEqual([line(api, 'active'), line(fresh, 'active')].sort());
    expect(r.stderr).toBe('sneakpeek: no containers matched\n2 active\n');
    expect(r.code).toBe(0);
    expect(Object.fromEntries(sshd.sessions(mark))).toEqual({ [A]: 0, [B]: 1 });
  });

  it('-a NODE -n NAME: that container only; a tracer of a stopped container is removed (its namespace is gone), then set up again once it runs', () => {
    const one = (what: string) => runTool('sneakpeek', ['-t', 'procmon', '-a', A, '-n', web, what], { env: { SNEAKPEEK_CONFIG: cfgFile } });
    expect(one('--status').stdout).toBe(`${line(web, 'active')}\n`);
    docker('stop', '-t', '0', web);
    const s = one('--status');
    expect(s.stdout).toBe(`${line(web, 'stale', 'container not running (stopped): the mount namespace it was set up for is gone')}\n`);
    expect(s.code).toBe(1);
    const r = one('--reconcile');
    expect(r.stdout).toBe(`${line(web, 'removed', 'container not running (stopped): its mount namespace is gone')}\n`);
    expect(r.stderr).toBe(`sneakpeek: ${A},${web}: container ${web} is not running (stopped)\n0 started, 0 restarted, 1 removed, 0 unchanged, 1 failed\n`);
    expect(r.code).toBe(1);
    expect(existsSync(mapOf(short(web)))).toBe(false);
    docker('start', web);
    const again = one('--reconcile');
    expect(again.stdout).toBe(`${line(web, 'started', 'missing')}\n`);
    expect(again.code).toBe(0);
    expect(keysOf(mapOf(short(web)))).toEqual([inodeOf(web)]);
  });

  it('--status --json: one object a line', () => {
    const r = readOnlyStatus('--json');
    const rows = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    expect(rows.map((o) => o.state)).toEqual(['active', 'active', 'active', 'active']);
    expect(rows.find((o) => o.id === short(web))).toMatchObject({
      node: A, unit: unit(web), state: 'active', why: '', active: 'active', sub: 'running', pod: `${web}-0`, namespace: 'default', container: 'main',
      containerId: placed.get(web)![0], containerState: 'running',
      inode: Number(inodeOf(web)), envInode: Number(inodeOf(web)), map: mapOf(short(web)), mapInodes: [Number(inodeOf(web))], backend: 'bpftrace',
    });
  });
});

describe.skipIf(skip)('-t fswatch --status / --reconcile', { timeout: 120_000 }, () => {
  const fs = (args: string[]) => runTool('sneakpeek', ['-t', 'fswatch', '--pods-file', podsFile, ...args], { env: { SNEAKPEEK_CONFIG: cfgFile } });
  const fline = (c: string, state: string, why = '') => line(c, state, why).replace('execsnoop@', 'fswatch@');
  const upper = (c: string) => docker('inspect', '-f', '{{.GraphDriver.Data.UpperDir}}', c);

  it('missing → started; an env file naming another UpperDir is stale → restarted; a removed container → orphan → removed', () => {
    expect(fs(['--reconcile']).stderr).toBe('4 started, 0 restarted, 0 removed, 0 unchanged\n');
    expect(fs(['--status']).stderr).toBe('4 active\n');
    const env = path.join(envA, 'fswatch', `${short(other)}.env`);
    writeFileSync(env, readFileSync(env, 'utf8').replace(/SNEAKPEEK_WATCH_DIR=\S+/, 'SNEAKPEEK_WATCH_DIR=/var/lib/docker/overlay2/gone/diff'));
    const otherId = short(other);
    dockerTry('rm', '-f', other);
    writePods([web, api, fresh]);
    const s = fs(['--status']);
    expect(s.stdout).toContain(`${A},${otherId} fswatch@${otherId}.service orphan container gone (docker: `);
    expect(s.code).toBe(1);
    const env2 = path.join(envB, 'fswatch', `${short(api)}.env`);
    writeFileSync(env2, readFileSync(env2, 'utf8').replace(/SNEAKPEEK_WATCH_DIR=\S+/, 'SNEAKPEEK_WATCH_DIR=/var/lib/docker/overlay2/gone/diff'));
    expect(fs(['--status']).stdout.split('\n')).toContain(fline(api, 'stale', `watches /var/lib/docker/overlay2/gone/diff, the container's UpperDir is ${upper(api)}`));
    const r = fs(['--reconcile']);
    const out = sorted(r.stdout);
    expect(out).toHaveLength(2);
    expect(out).toContain(fline(api, 'restarted', `stale: UpperDir /var/lib/docker/overlay2/gone/diff → ${upper(api)}`));
    expect(out.find((l) => l.startsWith(`${A},${otherId} `))).toMatch(new RegExp(`^${A.replace(/\./g, '\\.')},${otherId} fswatch@${otherId}\\.service removed orphan: container gone \\(.*No such container: ${otherId}\\)$`));
    expect(r.code).toBe(0);
    expect(existsSync(path.join(envA, 'fswatch', `${otherId}.env`))).toBe(false);
    expect(fs(['--status']).stderr).toBe('3 active\n');
  });

  it('restarted more often than StartLimitBurst (5 a minute) allows: a restart sneakpeek asks for is no crash loop, it still happens', () => {
    const env = path.join(envA, 'fswatch', `${short(web)}.env`);
    for (let i = 0; i < 7; i++) {
      writeFileSync(env, readFileSync(env, 'utf8').replace(/SNEAKPEEK_WATCH_DIR=\S+/, `SNEAKPEEK_WATCH_DIR=/var/lib/docker/overlay2/gone${i}/diff`));
      const r = fs(['--reconcile']);
      expect(r.stdout, `run ${i}: ${r.stderr}`).toBe(`${fline(web, 'restarted', `stale: UpperDir /var/lib/docker/overlay2/gone${i}/diff → ${upper(web)}`)}\n`);
      expect(r.code).toBe(0);
    }
    expect(sdA.systemctl('is-active', `fswatch@${short(web)}.service`).stdout.trim()).toBe('active');
  });
});

describe.skipIf(skip)('on containerd (ctr): a new task is a new namespace; a removed container is an orphan', { timeout: 120_000 }, () => {
  const ID = createHash('sha256').update(`sp-lifecycle-ctr-${process.pid}`).digest('hex');
  const id = ID.slice(0, 12);
  let ctd: Containerd;
  let sd: PrivateSystemd;
  let cfg: string;
  const one = (...args: string[]) => runTool('sneakpeek', ['-t', 'procmon', ...args], { env: { ...(sd.env as Record<string, string>), SNEAKPEEK_CONFIG: cfg } });
  const ino = () => execFileSync('stat', ['-Lc', '%i', `/proc/${ctd.task(ID)!.pid}/ns/mnt`], { encoding: 'utf8' }).trim();
  const ctrLine = (state: string, why = '') => `localhost,${id} execsnoop@${id}.service ${state}${why ? ` ${why}` : ''}`;

  beforeAll(async () => {
    ctd = await startContainerd('lifecycle', { under: '/var/lib' }); // (not /tmp, like a real one)
    ctd.run(ID, ctd.importImage(IMAGE), 'sleep', '100000');
    ids.add(id);
    sd = await startPrivateSystemd('lifecycle-ctr');
    cfg = path.join(tmp, 'ctr.yaml');
    writeFileSync(cfg, `ssh: {user: root}\nsudo: false\nbackend: bpftrace\nunitDir: ${sd.unitDir}\nenvDir: ${path.join(sd.dir, 'env')}\nlog: {target: file, dir: ${logDir}}\n`
      + `lock: {file: ${lockFile}, wait: 20}\ncontainerd: {address: ${ctd.address}, namespace: k8s.io}\n`);
  }, 120_000);
  afterAll(async () => {
    await sd?.stop();
    await ctd?.stop();
  });

  it('missing → started; the env file names engine ctr', () => {
    const s = one('--status', '-c', 'ctr', '-n', ID);
    expect(s.stdout).toBe(`${ctrLine('missing', 'not set up')}\n`);
    expect(s.code).toBe(1);
    const r = one('--reconcile', '-c', 'ctr', '-n', ID);
    expect(r.stdout, r.stderr).toBe(`${ctrLine('started', 'missing')}\n`);
    expect(readFileSync(path.join(sd.dir, 'env', 'execsnoop', `${id}.env`), 'utf8')).toContain('\nSNEAKPEEK_ENGINE=ctr\n');
    expect(keysOf(mapOf(id))).toEqual([ino()]);
    expect(one('--status', '-c', 'ctr', '-n', ID).stdout).toBe(`${ctrLine('active')}\n`);
  });

  it('the task ended and a new one started (a new mount namespace): stale, then restarted', () => {
    const was = ino();
    ctd.kill(ID);
    ctd.deleteTask(ID);
    // Hold the freed inode meanwhile, so that the new task surely gets another one.
    const hold = spawn('unshare', ['--mount', 'sleep', '60'], { stdio: 'ignore' });
    try {
      ctd.ctr('tasks', 'start', '-d', ID);
      const now = ino();
      expect(now).not.toBe(was);
      expect(one('--status', '-c', 'ctr', '-n', ID).stdout).toBe(
        `${ctrLine('stale', `set up for mount namespace ${was}, the container's is now ${now}; map holds ${was}, the container's mount namespace is ${now}`)}\n`);
      const r = one('--reconcile', '-c', 'ctr', '-n', ID);
      expect(r.stdout, r.stderr).toBe(`${ctrLine('restarted', `stale: mount namespace ${was} → ${now}`)}\n`);
      expect(keysOf(mapOf(id))).toEqual([now]);
    } finally {
      hold.kill('SIGKILL');
    }
  });

  it('the container removed: found on the node (no pod lists it), an orphan in ctr\'s own words; removed', () => {
    ctd.kill(ID);
    ctd.remove(ID);
    const empty = path.join(tmp, 'no-pods.json');
    writeFileSync(empty, JSON.stringify({ kind: 'PodList', items: [] }));
    const s = one('--status', '--pods-file', empty, '-a', '127.0.0.1');
    expect(s.stdout).toBe(`127.0.0.1,${id} execsnoop@${id}.service orphan container gone (ctr: ctr: no container '${id}' in namespace k8s.io)\n`);
    expect(s.code).toBe(1);
    const r = one('--reconcile', '--pods-file', empty, '-a', '127.0.0.1');
    expect(r.stdout, r.stderr).toBe(`127.0.0.1,${id} execsnoop@${id}.service removed orphan: container gone (ctr: no container '${id}' in namespace k8s.io)\n`);
    expect(existsSync(mapOf(id))).toBe(false);
  });
});

describe.skipIf(skip)('sneakpeek-reconcile@.service and .timer', { timeout: 120_000 }, () => {
  const opts = { ...RECONCILE_DEFAULTS, repo: ROOT, config: '' };

  it('verify clean with systemd-analyze: the shipped files installed at this checkout, and a rendering with log.target: file', () => {
    const shipped = readFileSync(path.join(ROOT, 'systemd/sneakpeek-reconcile@.service'), 'utf8').replaceAll(RECONCILE_DEFAULTS.repo, ROOT);
    const cfg = parseConfig(`log: {target: file, dir: ${logDir}}`, 'test');
    for (const text of [shipped, renderReconcileService(cfg, { ...opts, config: cfgFile })]) {
      const r = verifyInstance('sneakpeek-reconcile@.service', text, 'procmon');
      expect(r.output.replace(/^.*network-online\.target.*$/gm, '').trim()).toBe('');
      expect(r.status).toBe(0);
    }
    const t = verifyInstance('sneakpeek-reconcile@.timer', readFileSync(path.join(ROOT, 'systemd/sneakpeek-reconcile@.timer'), 'utf8'), 'procmon');
    expect(t.output).toBe('');
    expect(t.status).toBe(0);
    expect(renderReconcileService(DEFAULTS)).toBe(readFileSync(path.join(ROOT, 'systemd/sneakpeek-reconcile@.service'), 'utf8'));
  });

  it('a real systemd runs the timer, the timer runs bin/sneakpeek --reconcile with the config, and it puts back a stopped tracer; its lines go to the type\'s log dir', async () => {
    const cfg = parseConfig(`log: {target: file, dir: ${logDir}}`, 'test');
    // Every 5 s instead of every minute; the selection from the env file beside the config.
    writeFileSync(path.join(sdA.unitDir, 'sneakpeek-reconcile@.service'), renderReconcileService(cfg, { ...opts, config: cfgFile }));
    writeFileSync(path.join(sdA.unitDir, 'sneakpeek-reconcile@.timer'), renderReconcileTimer({ ...opts, onCalendar: '*:*:0/5' }));
    writeFileSync(path.join(sdA.unitDir, 'network-online.target'), '[Unit]\n');
    writeFileSync(path.join(path.dirname(cfgFile), 'sneakpeek-reconcile-procmon.env'), `SNEAKPEEK_SELECT=--pods-file ${podsFile}\n`);
    expect(sdA.systemctl('daemon-reload').status).toBe(0);
    sdB.systemctl('stop', unit(api));
    const log = path.join(logDir, 'reconcile-procmon.log');
    expect(sdA.systemctl('start', 'sneakpeek-reconcile@procmon.timer').status).toBe(0);
    for (let i = 0; i < 300 && !(existsSync(log) && / unchanged\n/.test(readFileSync(log, 'utf8'))); i++) await sleep(100);
    sdA.systemctl('stop', 'sneakpeek-reconcile@procmon.timer');
    const out = readFileSync(log, 'utf8').split('\n').filter(Boolean);
    // other was removed (the fswatch test): its execsnoop@ instance is an orphan now.
    expect(out.pop()).toBe('1 started, 0 restarted, 1 removed, 2 unchanged');
    expect(out).toHaveLength(2);
    expect(out).toContain(line(api, 'started', 'was inactive'));
    expect(out.find((l) => l !== line(api, 'started', 'was inactive'))).toMatch(/^127\.0\.0\.2,[0-9a-f]{12} execsnoop@[0-9a-f]{12}\.service removed orphan: container gone /);
    expect(active(api)).toBe('active');
    expect(sdA.systemctl('show', '-p', 'Result', '--value', 'sneakpeek-reconcile@procmon.service').stdout.trim()).toBe('success');
  });
});

// Adversarial cases (branch lifecycle-hardening): node A only, containers and a pods file of
// their own; lines of the instances the other describes left on A are not looked at here.
describe.skipIf(skip)('lifecycle-hardening: hostile env files, a deadline in the middle of --reconcile', { timeout: 180_000 }, () => {
  const [lw, lh] = ['hw', 'hh'].map(name) as [string, string];
  const pods2 = path.join(tmp, 'pods-hardening.json');
  const hangFlag = path.join(tmp, 'hang');
  const wrapper = path.join(tmp, 'docker-hang');
  const canary = path.join(tmp, 'canary');
  const hangPid = path.join(tmp, 'hang.pid');
  let hangCfg: string;
  const run = (args: string[], cfg = cfgFile) => runTool('sneakpeek', ['-t', 'procmon', '--pods-file', pods2, '-a', A, ...args], { env: { SNEAKPEEK_CONFIG: cfg } });
  const mine = (out: string) => sorted(out).filter((l) => [lw, lh].some((c) => l.startsWith(`${A},${short(c)} `)));

  beforeAll(() => {
    if (skip) return;
    place(lw, A);
    place(lh, A);
    writeFileSync(pods2, JSON.stringify({
      kind: 'PodList',
      items: [lw, lh].map((c) => pod({ name: `${c}-0`, hostIP: A, containers: [{ name: 'main', id: docker('inspect', '-f', '{{.Id}}', c) }] })),
    }));
    // The engine hangs on lh while the flag file exists (a daemon that stops answering).
    writeFileSync(wrapper, `#!/bin/sh\nif [ -e '${hangFlag}' ]; then case "$*" in *${short(lh)}*) echo $$ > '${hangPid}'; exec sleep 300 ;; esac; fi\nexec docker "$@"\n`, { mode: 0o755 });
    hangCfg = sshd.writeConfig({ sudo: false, concurrency: 2, backend: 'bpftrace', unitDir: sdA.unitDir, envDir: envA, log: { target: 'file', dir: logDir },
      lock: { file: lockFile, wait: 20 }, paths: { docker: wrapper } }, 'hang.yaml');
  });
  afterAll(() => {
    rmSync(hangFlag, { force: true });
  });

  it('the engine hangs after a stale instance\'s env file was rewritten and before its unit restarted: the run ends at the deadline; the next --status says stale, the next --reconcile restarts it', async () => {
    const r0 = run(['--reconcile']);
    expect(mine(r0.stdout), r0.stderr).toEqual([`${A},${short(lw)} ${unit(lw)} started missing`, `${A},${short(lh)} ${unit(lh)} started missing`].sort());
    // lw restarted into a new mount namespace (its old inode held meanwhile, so that it surely changes)
    const was = inodeOf(lw);
    docker('stop', '-t', '0', lw);
    const hold = spawn('unshare', ['--mount', 'sleep', '60'], { stdio: 'ignore' });
    try {
      docker('start', lw);
    } finally {
      await sleep(200);
      hold.kill('SIGKILL');
    }
    const now = inodeOf(lw);
    expect(now).not.toBe(was);
    expect(await waitLog(lw, 0, new RegExp(`^Tracing exec in mount namespace ${was}\\.\\.\\.`))).toBe(true);
    const pid = mainPid(lw);
    writeFileSync(hangFlag, '');
    const t0 = Date.now();
    const r = run(['--reconcile', '--timeout', '4'], hangCfg);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(r.stderr).toMatch(new RegExp(`^sneakpeek: ${A.replace(/\./g, '\\.')},${short(lw)}: ${A.replace(/\./g, '\\.')}: timed out after 4s$`, 'm'));
    expect(r.code).toBe(1);
    rmSync(hangFlag);
    // The env file says `now`, the map holds `now`, but the unit still runs with `was`.
    expect(readFileSync(path.join(envA, 'execsnoop', `${short(lw)}.env`), 'utf8')).toContain(`\nSNEAKPEEK_MNTNS_INODE=${now}\n`);
    expect(keysOf(mapOf(short(lw)))).toEqual([now]);
    // ... and the unit still runs, not restarted: its bpftrace filters on `was`.
    expect(mainPid(lw)).toBe(pid);
    const s = run(['--status']);
    expect(mine(s.stdout)).toContain(`${A},${short(lw)} ${unit(lw)} stale its env file changed after the unit started: the unit does not run with what it says`);
    expect(s.code).toBe(1);
    const from = logLines(lw).length;
    const again = run(['--reconcile']);
    expect(mine(again.stdout), again.stderr).toEqual([`${A},${short(lw)} ${unit(lw)} restarted stale: its env file changed after the unit started`]);
    expect(mainPid(lw)).not.toBe(pid);
    expect(await waitLog(lw, from, new RegExp(`^Tracing exec in mount namespace ${now}\\.\\.\\.`))).toBe(true);
    expect(run(['--reconcile']).stdout).not.toContain(short(lw));
    expect(mine(run(['--status']).stdout)).toEqual([`${A},${short(lw)} ${unit(lw)} active`, `${A},${short(lh)} ${unit(lh)} active`].sort());
  });

  it('Ctrl-C in the same place: exit 130, the node\'s run (the hung engine call too) ends; the next --status says stale, the next --reconcile restarts it', async () => {
    expect(run(['--reconcile']).code).toBe(0);
    const was = inodeOf(lw);
    docker('stop', '-t', '0', lw);
    const hold = spawn('unshare', ['--mount', 'sleep', '60'], { stdio: 'ignore' });
    try {
      docker('start', lw);
    } finally {
      await sleep(200);
      hold.kill('SIGKILL');
    }
    const now = inodeOf(lw);
    expect(now).not.toBe(was);
    const pid = mainPid(lw);
    rmSync(hangPid, { force: true });
    writeFileSync(hangFlag, '');
    const child = spawn(path.join(ROOT, 'bin', 'sneakpeek'), ['-t', 'procmon', '--pods-file', pods2, '-a', A, '--reconcile'], { env: { ...process.env, SNEAKPEEK_CONFIG: hangCfg }, stdio: 'ignore' });
    const code = new Promise<number | null>((resolve) => child.on('close', resolve));
    for (let i = 0; i < 300 && !existsSync(hangPid); i++) await sleep(100);
    expect(existsSync(hangPid)).toBe(true);
    const hung = Number(readFileSync(hangPid, 'utf8').trim());
    child.kill('SIGINT');
    expect(await code).toBe(130);
    rmSync(hangFlag);
    for (let i = 0; i < 100 && existsSync(`/proc/${hung}`); i++) await sleep(100);
    expect(existsSync(`/proc/${hung}`), 'the hung engine call outlived the interrupted run').toBe(false);
    expect(readFileSync(path.join(envA, 'execsnoop', `${short(lw)}.env`), 'utf8')).toContain(`\nSNEAKPEEK_MNTNS_INODE=${now}\n`);
    expect(mainPid(lw)).toBe(pid);
    const s = run(['--status']);
    expect(mine(s.stdout)).toContain(`${A},${short(lw)} ${unit(lw)} stale its env file changed after the unit started: the unit does not run with what it says`);
    const again = run(['--reconcile']);
    expect(mine(again.stdout), again.stderr).toEqual([`${A},${short(lw)} ${unit(lw)} restarted stale: its env file changed after the unit started`]);
    expect(mainPid(lw)).not.toBe(pid);
    expect(mine(run(['--status']).stdout)).toEqual([`${A},${short(lw)} ${unit(lw)} active`, `${A},${short(lh)} ${unit(lh)} active`].sort());
  });

  it('env files that sneakpeek did not write (no managed-by line, a symlink to /etc/shadow, a directory, hostile names and contents): --status runs nothing from them and changes nothing; --reconcile leaves them alone and removes only its own orphan', () => {
    const dir = path.join(envA, 'execsnoop');
    const shadow = readFileSync('/etc/shadow', 'utf8');
    const alien = path.join(dir, 'a1a1a1a1a1a1.env');
    writeFileSync(alien, `SNEAKPEEK_ENGINE=docker\nSNEAKPEEK_CONTAINER=$(touch ${canary})\nSNEAKPEEK_MNTNS_INODE=\`touch ${canary}\`\n`);
    execFileSync('ln', ['-sfn', '/etc/shadow', path.join(dir, 'b2b2b2b2b2b2.env')]);
    mkdirSync(path.join(dir, 'c3c3c3c3c3c3.env'), { recursive: true });
    writeFileSync(path.join(dir, '$(touch sp-lifecycle-canary).env'), `$(touch ${canary})\n`);
    writeFileSync(path.join(dir, '-rf.env'), '');
    writeFileSync(path.join(dir, 'd4d4\nd4d4d4d4.env'), '');
    // Ours (the managed-by line), hostile values, a container that does not exist: an orphan.
    const ours = path.join(dir, 'e5e5e5e5e5e5.env');
    writeFileSync(ours, `# managed by sneakpeek — do not edit: sneakpeek rewrites this file from sneakpeek.config.yaml\nSNEAKPEEK_ENGINE=docker\nSNEAKPEEK_CONTAINER=$(touch ${canary})\nSNEAKPEEK_MNTNS_INODE=;touch ${canary}\n${'#'.repeat(1 << 20)}\n`.repeat(8));
    const before = snapshot();
    const s = run(['--status']);
    expect(snapshot()).toBe(before);
    const canaries = () => [canary, path.join(os.homedir(), 'sp-lifecycle-canary'), path.join(dir, 'sp-lifecycle-canary'), '/sp-lifecycle-canary'].filter((f) => existsSync(f));
    expect(canaries()).toEqual([]);
    const lines = sorted(s.stdout);
    expect(lines).toContain(`${A},e5e5e5e5e5e5 execsnoop@e5e5e5e5e5e5.service orphan container gone (docker: Error response from daemon: No such container: e5e5e5e5e5e5)`);
    expect(lines.filter((l) => /^127\.0\.0\.2,(a1a1|b2b2|c3c3)/.test(l))).toEqual([]);
    expect(s.stderr).toContain(`sneakpeek: warning: ${A}: ${alien}: not written by sneakpeek (no managed-by first line): left alone\n`);
    expect(s.stderr).toContain(`sneakpeek: warning: ${A}: ${path.join(dir, 'b2b2b2b2b2b2.env')}: not written by sneakpeek (a symbolic link): left alone\n`);
    expect(s.stdout + s.stderr).not.toContain(shadow.split('\n')[0]);
    expect(s.code).toBe(1);

    const r = run(['--reconcile']);
    expect(canaries()).toEqual([]);
    expect(sorted(r.stdout).filter((l) => !mine(r.stdout).includes(l) && !l.includes(' unchanged'))).toEqual([
      `${A},e5e5e5e5e5e5 execsnoop@e5e5e5e5e5e5.service removed orphan: container gone (Error response from daemon: No such container: e5e5e5e5e5e5)`]);
    expect(existsSync(ours)).toBe(false);
    expect(readFileSync(alien, 'utf8')).toContain('SNEAKPEEK_ENGINE=docker');
    expect(readFileSync(path.join(dir, 'b2b2b2b2b2b2.env'), 'utf8')).toBe(shadow);
    expect(readFileSync('/etc/shadow', 'utf8')).toBe(shadow);
    expect(existsSync(path.join(dir, 'c3c3c3c3c3c3.env'))).toBe(true);
    for (const f of ['a1a1a1a1a1a1.env', 'b2b2b2b2b2b2.env', 'c3c3c3c3c3c3.env', '$(touch sp-lifecycle-canary).env', '-rf.env', 'd4d4\nd4d4d4d4.env']) rmSync(path.join(dir, f), { recursive: true, force: true });
  });
});
