// sneakpeek --events end to end, all real: a private systemd with its own journald runs the
// units (bpftrace backend), two loopback sshd "nodes" (test/helpers/sshd.ts; the sessions' PATH
// starts with the instance's systemctl and journalctl shims), busybox containers (--network none)
// from a saved pod list, kubectl's JSON as discovery. Proves: exec, connect/accept and file
// events from two containers on two nodes in one --json stream with the right pod on each, one
// ssh session per node, nothing from a neighbour left out of the selection though its units run;
// drop and execute (upperLayer) on the real kernel and --upper-only; the text lines; and --follow:
// a container executes numbered commands while the ssh session of its node is killed (the
// client, then the server side of both nodes): stderr says so, the follower reconnects and
// every number appears exactly once; an instance started after the follower began shows up;
// Ctrl-C ends it (130). The follow is proven for both log targets (journal, files).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runTool, runToolAsync, TSX } from '../helpers/cli.ts';
import { cleanupContainers, docker, dockerTry, ensureBusyboxImage, runContainer } from '../helpers/docker.ts';
import { pod } from '../helpers/kube.ts';
import { alive, cmdline, descendants, exactlyOnce, procStat } from '../helpers/procs.ts';
import { dockerUp, EBPF, isRoot, missing } from '../helpers/prereq.ts';
import { sshdInstalled, startSshd, type Sshd } from '../helpers/sshd.ts';
import { journaldAvailable, startPrivateSystemd, systemdAvailable, type PrivateSystemd } from '../helpers/systemd.ts';

const skip = missing({
  root: isRoot,
  docker: dockerUp,
  'openssh-server': sshdInstalled,
  ...EBPF,
  'systemd, systemd-analyze, nsenter, unshare': systemdAvailable,
  'systemd-journald, journalctl': journaldAvailable,
  'fswatch (apt-get install fswatch)': () => existsSync('/usr/bin/fswatch'),
});

const NODE2 = '127.0.0.2';
const NODE3 = '127.0.0.3';
const TAG = `sp-events-e2e-${process.pid}`;
// web-0 on node 2, api-0 on node 3; noisy-0 on node 2, left out of --events (-e noisy-0)
const C = { web: `${TAG}-web`, api: `${TAG}-api`, noisy: `${TAG}-noisy` };
const IPV6 = ['--sysctl', 'net.ipv6.conf.all.disable_ipv6=0', '--sysctl', 'net.ipv6.conf.lo.disable_ipv6=0'];
const tmp = mkdtempSync(path.join(os.tmpdir(), 'sp-events-e2e-'));
const PODS = path.join(tmp, 'pods.json');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let sd: PrivateSystemd;
let sshd: Sshd;
let cfgJournal: string;
let cfgFile: string;
const full: Record<string, string> = {};
const short = (k: keyof typeof C) => full[k]!.slice(0, 12);

type Obj = Record<string, unknown>;
const jsonLines = (text: string): Obj[] => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Obj);
const sneakpeek = (cfg: string, args: string[]) => runTool('sneakpeek', args, { env: { SNEAKPEEK_CONFIG: cfg }, timeoutMs: 180_000 });
const setup = (cfg: string, type: string, pods = PODS) => {
  const r = sneakpeek(cfg, ['-t', type, ...(type === 'fswatch' ? [] : ['--backend', 'bpftrace']), '--pods-file', pods]);
  if (r.code !== 0) throw new Error(`setup ${type}: ${r.stderr}`);
};
const sh = (c: string, script: string) => docker('exec', c, 'sh', '-c', script);
/** A unit's journal lines. */
const journal = (unit: string) => sd.journalctl('-o', 'cat', `_SYSTEMD_UNIT=${unit}`).stdout;
async function until<T>(what: string, get: () => T | undefined | false, ms = 30_000): Promise<T> {
  for (const end = Date.now() + ms; ; await sleep(200)) {
    const v = get();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
  }
}

function writePods(file: string, which: (keyof typeof C)[]): void {
  const spec = {
    web: { name: 'web-0', namespace: 'shop', hostIP: NODE2, container: 'web' },
    api: { name: 'api-0', namespace: 'shop', hostIP: NODE3, container: 'api' },
    noisy: { name: 'noisy-0', namespace: 'shop', hostIP: NODE2, container: 'noisy' },
  } as const;
  const items = which.map((k) => pod({ name: spec[k].name, namespace: spec[k].namespace, hostIP: spec[k].hostIP, containers: [{ name: spec[k].container, id: full[k] }] }));
  writeFileSync(file, JSON.stringify({ kind: 'PodList', items }));
}

beforeAll(async () => {
  if (skip) return;
  ensureBusyboxImage();
  for (const k of Object.keys(C) as (keyof typeof C)[]) full[k] = runContainer(C[k], 'sneakpeek-test/busybox:1', ...IPV6);
  sd = await startPrivateSystemd('events-e2e', { journal: true });
  sshd = await startSshd({ addresses: [NODE2, NODE3], sshdConfig: `SetEnv PATH=${sd.binDir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` });
  const base = { sudo: false, concurrency: 1, unitDir: sd.unitDir, envDir: path.join(sd.dir, 'env'), ssh: { serverAliveInterval: 2 } };
  cfgJournal = sshd.writeConfig({ ...base, log: { target: 'journal', dir: path.join(sd.dir, 'log') } }, 'journal.yaml');
  cfgFile = sshd.writeConfig({ ...base, log: { target: 'file', dir: path.join(sd.dir, 'log') } }, 'file.yaml');
  writePods(PODS, ['web', 'api', 'noisy']);
}, 120_000);

afterAll(async () => {
  cleanupContainers();
  await sshd?.stop();
  await sd?.stop();
  for (const k of Object.keys(full) as (keyof typeof C)[]) rmSync(`/sys/fs/bpf/mnt_ns_${short(k)}`, { force: true });
  rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(skip)('--events: one labelled stream from two nodes (journal)', () => {
  let stream: Obj[] = [];

  it('exec, connect/accept and file events of two containers on two nodes arrive in one --json stream, each with its pod; one session per node', async () => {
    for (const type of ['procmon', 'tcptracer', 'fswatch']) setup(cfgJournal, type);
    for (const k of ['web', 'api', 'noisy'] as const) {
      await until(`${k}'s tracers attached`, () => /Tracing exec in/.test(journal(`execsnoop@${short(k)}.service`)) && /Tracing TCP/.test(journal(`tcptracer@${short(k)}.service`)));
      await until(`${k}'s fswatch up`, () => /sneakpeek fswatch: container/.test(journal(`fswatch@${short(k)}.service`)));
    }
    await sleep(1000); // fswatch sets its watches after its first line
    for (const k of ['web', 'api', 'noisy'] as const) {
      // (docker exec runs /bin/ls itself: busybox sh would run its ls applet without an exec)
      dockerTry('exec', C[k], 'ls', `/marker-${k}`);
      sh(C[k], `echo hi > /file-${k}.txt`);
      docker('exec', '-d', C[k], 'sh', '-c', 'nc -l -p 8080 >/dev/null');
      sh(C[k], 'for i in 1 2 3 4 5 6 7 8 9 10; do echo x | nc 127.0.0.1 8080 && break; sleep 0.3; done');
    }
    // drop and execute in web-0: the image's /bin/ls is not marked; a busybox copied to /tmp and run is
    sh(C.web, 'cp /bin/busybox /tmp/dropped && { /tmp/dropped true; true; }'); // (busybox: "dropped: applet not found")
    // the neighbour's units did record its own (so leaving it out below is what keeps it out)
    await until('the neighbour\'s marker in its journal', () => journal(`execsnoop@${short('noisy')}.service`).includes('/marker-noisy'));

    const args = ['-t', 'procmon,tcptracer,fswatch', '--events', '--json', '--pods-file', PODS, '-e', 'noisy-0'];
    const want = (o: Obj[]) =>
      (['web', 'api'] as const).every((k) =>
        o.some((e) => e.container === k && e.type === 'procmon' && (e.args as string[]).includes(`/marker-${k}`)) &&
        o.some((e) => e.container === k && e.kind === 'connect' && e.dport === 8080) &&
        o.some((e) => e.container === k && e.kind === 'accept' && e.sport === 8080) &&
        o.some((e) => e.container === k && e.type === 'fswatch' && e.path === `/file-${k}.txt`)) &&
      o.some((e) => e.filename === '/tmp/dropped');
    let mark = sshd.mark();
    let r = sneakpeek(cfgJournal, args);
    for (const end = Date.now() + 30_000; !want(jsonLines(r.stdout)) && Date.now() < end; ) {
      await sleep(1000);
      mark = sshd.mark();
      r = sneakpeek(cfgJournal, args);
    }
    expect(r.stderr).toBe('2 ok, 0 failed\n');
    expect(r.code).toBe(0);
    stream = jsonLines(r.stdout);
    expect(want(stream)).toBe(true);
    expect(Object.fromEntries(sshd.sessions(mark))).toEqual({ [NODE2]: 1, [NODE3]: 1 });
    const where = {
      web: { node: `node-${NODE2.replace(/\./g, '-')}`, nodeIP: NODE2, pod: 'web-0', namespace: 'shop', container: 'web', id: full.web },
      api: { node: `node-${NODE3.replace(/\./g, '-')}`, nodeIP: NODE3, pod: 'api-0', namespace: 'shop', container: 'api', id: full.api },
    };
    for (const e of stream) expect(e).toMatchObject(where[e.container as 'web' | 'api']);
    for (const k of ['web', 'api'] as const) {
      const mine = stream.filter((e) => e.container === k);
      expect(new Set(mine.map((e) => e.type))).toEqual(new Set(['procmon', 'tcptracer', 'fswatch']));
      expect(mine.find((e) => (e.args as string[] | undefined)?.includes(`/marker-${k}`))).toMatchObject({ type: 'procmon', comm: 'ls', filename: '/bin/ls', ret: expect.any(Number), upperLayer: false });
      const connect = mine.find((e) => e.kind === 'connect' && e.dport === 8080)!;
      expect(connect).toMatchObject({ type: 'tcptracer', ip: 4, saddr: '127.0.0.1', daddr: '127.0.0.1', comm: 'nc' });
      expect(mine.find((e) => e.kind === 'accept' && e.sport === 8080)).toMatchObject({ dport: connect.sport });
      expect(mine.find((e) => e.path === `/file-${k}.txt`)).toMatchObject({ type: 'fswatch', hostPath: expect.stringMatching(new RegExp(`/diff/file-${k}\\.txt$`)) });
      // every line's time is RFC 3339; oldest first within a container's own type
      for (const e of mine) expect(e.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
    }
    // nothing from the neighbour, which the selection leaves out
    expect(r.stdout).not.toContain('noisy');
    expect(stream.filter((e) => e.pod === 'noisy-0' || e.id === full.noisy)).toEqual([]);
  });

  it('drop and execute: the image\'s /bin/ls is not marked, a busybox copied to /tmp and run is; --upper-only shows only that', () => {
    const dropped = stream.find((e) => e.filename === '/tmp/dropped');
    expect(dropped).toMatchObject({ container: 'web', args: ['/tmp/dropped', 'true'], upperLayer: true, layer: 'upper' });
    expect(stream.filter((e) => e.type === 'procmon' && e.filename === '/bin/ls').every((e) => e.upperLayer === false && e.layer === 'lower')).toBe(true);
    const r = sneakpeek(cfgJournal, ['-t', 'procmon', '--events', '--upper-only', '--pods-file', PODS, '-e', 'noisy-0']);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l).toMatch(new RegExp(`^${NODE2.replace(/\./g, '\\.')},${short('web')} \\S+ exec pid=\\d+ ppid=\\d+ uid=0 ret=0 comm=dropped file=/tmp/dropped UPPER\\(upper\\) args: /tmp/dropped true$`));
  });

  it('text lines carry the cluster prefix NODE,CONTAINERID12; --since in the future shows nothing', () => {
    const r = sneakpeek(cfgJournal, ['-t', 'tcptracer', '--events', '--pods-file', PODS, '-e', 'noisy-0']);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n').filter(Boolean);
    for (const k of ['web', 'api'] as const) {
      const node = k === 'web' ? NODE2 : NODE3;
      expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${node.replace(/\./g, '\\.')},${short(k)} \\S+ connect pid=\\d+ comm=nc 127\\.0\\.0\\.1:\\d+ -> 127\\.0\\.0\\.1:8080$`)));
      // (nc -l listens on an IPv6 socket: an IPv4 peer shows as ::ffff:a.b.c.d, as the socket holds it)
      expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${node.replace(/\./g, '\\.')},${short(k)} \\S+ accept pid=\\d+ comm=nc \\[::ffff:127\\.0\\.0\\.1\\]:8080 <- \\[::ffff:127\\.0\\.0\\.1\\]:\\d+$`)));
    }
    const later = new Date(Date.now() + 3_600_000).toISOString();
    const none = sneakpeek(cfgJournal, ['-t', 'tcptracer', '--events', '--since', later, '--pods-file', PODS, '-e', 'noisy-0']);
    expect([none.code, none.stdout, none.stderr]).toEqual([0, '', '2 ok, 0 failed\n']);
  });

  it('two readers at once on the same nodes (a reader takes no lock): both whole, the same events', async () => {
    const args = ['-t', 'procmon,tcptracer', '--events', '--json', '--pods-file', PODS, '-e', 'noisy-0'];
    const env = { env: { SNEAKPEEK_CONFIG: cfgJournal }, timeoutMs: 120_000 };
    const [a, b] = await Promise.all([runToolAsync('sneakpeek', args, env), runToolAsync('sneakpeek', args, env)]);
    expect([a.code, a.stderr, b.code, b.stderr]).toEqual([0, '2 ok, 0 failed\n', 0, '2 ok, 0 failed\n']);
    // each node's events in the node's order; the nodes interleave as they arrive
    const byNode = (out: string) => jsonLines(out).reduce<Record<string, string[]>>((m, e) => ((m[e.node as string] ??= []).push(JSON.stringify(e)), m), {});
    expect(byNode(b.stdout)).toEqual(byNode(a.stdout));
    expect(jsonLines(a.stdout).length).toBeGreaterThan(10);
  });

  it('--follow | head -3: the follower ends quietly when its reader goes, and nothing of it is left on either side', async () => {
    const cmd = `${path.join(ROOT, 'bin/sneakpeek')} -t procmon,tcptracer --events --follow --json --pods-file ${PODS} -e noisy-0 | head -3; echo "exit \${PIPESTATUS[0]}" >&2`;
    const started = Date.now();
    const r = await new Promise<{ out: string; err: string }>((resolve) => {
      const child = spawn('bash', ['-c', cmd], { env: { ...process.env, SNEAKPEEK_CONFIG: cfgJournal }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr.on('data', (b: Buffer) => (err += b.toString()));
      child.on('close', () => resolve({ out, err }));
    });
    // the history is longer than 3 events: the next write after head left ends the follower
    expect(jsonLines(r.out)).toHaveLength(3);
    expect(r.err).toBe('exit 0\n');
    expect(Date.now() - started).toBeLessThan(30_000);
    // the nodes' side: every session (journalctl -f and all) ends with the ssh client
    await until('no sshd session left', () => sshdSessions().length === 0 && true, 15_000).catch(() => undefined);
    expect(sshdSessions()).toEqual([]);
  });

  it('--follow with a node that hangs (its session stopped): said within seconds, reconnected; the hung session ends once it runs again', async () => {
    const f = new Follower(cfgJournal, ['-t', 'procmon', '--events', '--follow', '--json', '--since', '0s', '--pods-file', PODS, '-e', 'noisy-0']);
    const seen = (word: string) => f.events().some((e) => (e.args as string[] | undefined)?.[1] === word);
    let stopped: number | undefined;
    try {
      // node 2's session is streaming: an exec in web-0 (node 2) shows up. (A session still
      // starting — a login shell's rc files — is not the case here.)
      for (const end = Date.now() + 60_000; !seen('before-the-hang'); await sleep(1000)) {
        if (Date.now() > end) throw new Error('node 2 never streamed');
        sh(C.web, '/bin/echo before-the-hang >/dev/null');
      }
      // the sshd process of node 2's session: the parent of the processes whose environment
      // names 127.0.0.2 as the server. Stopped, it answers nothing, as a hung node
      const inSession = sshdSessions().filter((p) => {
        try {
          return readFileSync(`/proc/${p}/environ`, 'utf8').split('\0').some((v) => v.startsWith('SSH_CONNECTION=') && v.includes(` ${NODE2} `));
        } catch {
          return false;
        }
      });
      const net = [...new Set(inSession.map((p) => procStat(p)?.ppid ?? 0))].filter((p) => p > 0 && !inSession.includes(p) && p !== sshd.pid);
      expect(net).toHaveLength(1);
      const session = [net[0]!, ...descendants(net[0]!)];
      const t0 = Date.now();
      process.kill(net[0]!, 'SIGSTOP');
      stopped = net[0];
      // ssh.serverAliveInterval 2 (×3 unanswered): the client gives up, the follower says so
      await until('the hang said on stderr', () => f.err.includes(`sneakpeek: ${NODE2}: session lost`) && true, 20_000);
      expect(Date.now() - t0).toBeLessThan(15_000);
      await until('reconnected', () => f.err.includes(`sneakpeek: ${NODE2}: reconnected`) && true, 15_000);
      for (const end = Date.now() + 30_000; !seen('after-the-hang'); await sleep(1000)) {
        if (Date.now() > end) throw new Error('no event after the hang');
        sh(C.web, '/bin/echo after-the-hang >/dev/null');
      }
      process.kill(net[0]!, 'SIGCONT');
      stopped = undefined;
      // woken, the old session finds its client gone and ends, the node script with it (its watchdog)
      const left = () => session.filter(alive);
      await until('the hung session gone', () => left().length === 0 && true, 20_000).catch(() => undefined);
      expect(left()).toEqual([]);
    } finally {
      if (stopped !== undefined) process.kill(stopped, 'SIGCONT');
      f.proc.kill('SIGINT');
    }
    expect(await f.exit).toBe(130);
  }, 150_000);
});

/** A follower: `sneakpeek … --follow --json` as a child process, its lines collected as they come. */
class Follower {
  proc: ChildProcess;
  out = '';
  err = '';
  exit: Promise<number | null>;
  constructor(cfg: string, args: string[]) {
    this.proc = spawn(TSX, [path.join(ROOT, 'scripts/sneakpeek.ts'), ...args], { env: { ...process.env, SNEAKPEEK_CONFIG: cfg }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout!.on('data', (b: Buffer) => (this.out += b.toString()));
    this.proc.stderr!.on('data', (b: Buffer) => (this.err += b.toString()));
    this.exit = new Promise((r) => this.proc.on('close', (code) => r(code)));
  }
  events(): Obj[] {
    return jsonLines(this.out.slice(0, this.out.lastIndexOf('\n') + 1));
  }
  /** Numbers n=N of the numbered commands of container `k`. */
  numbers(k: string): number[] {
    return this.events()
      .filter((e) => e.container === k && e.type === 'procmon')
      .map((e) => /^n=(\d+)$/.exec((e.args as string[])[1] ?? '')?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number);
  }
  /** The processes below the follower (ssh clients, …): pid → command line. */
  descendants(): Map<number, string> {
    return new Map(descendants(this.proc.pid!).map((p) => [p, cmdline(p)]));
  }
}


/** Every process below our sshd (its sessions), not the listener itself. */
const sshdSessions = (): number[] => descendants(sshd.pid);

describe.skipIf(skip).each([
  ['journal', () => cfgJournal],
  ['file', () => cfgFile],
] as const)('--follow (%s): sessions killed mid-stream, every number exactly once', (target, cfgOf) => {
  it('a numbered exec stream survives killing the ssh client of its node, then the server side of both nodes; a later instance shows up; Ctrl-C ends it', async () => {
    const cfg = cfgOf();
    const twoPods = path.join(tmp, `pods-${target}.json`);
    writePods(twoPods, ['web', 'api']);
    setup(cfg, 'procmon', twoPods);
    setup(cfg, 'fswatch', twoPods);
    const unitApi = `execsnoop@${short('api')}.service`;
    // api-0's instance is stopped before the follower starts, and started again while it runs
    expect(sd.systemctl('stop', unitApi).status).toBe(0);
    // --since 0s: from when each node is first reached (and from then, not from a reconnect, after one)
    const f = new Follower(cfg, ['-t', 'procmon,fswatch', '--events', '--follow', '--json', '--since', '0s', '--pods-file', twoPods]);
    await sleep(3000); // connected, reading
    // web's run is long enough to be cut twice; api's is cut once
    const N = { web: 1000, api: 400 };
    const gen = (k: 'web' | 'api') => docker('exec', '-d', C[k], 'sh', '-c', `i=0; while [ $i -lt ${N[k]} ]; do i=$((i+1)); /bin/echo n=$i >/dev/null; sleep 0.02; done`);
    gen('web');
    await until('web: 60 numbers', () => f.numbers('web').length >= 60 && true);
    // 1. the client side: kill node 2's ssh process
    const ssh2 = [...f.descendants()].filter(([, c]) => /^ssh /.test(c) && c.includes(` ${NODE2} `)).map(([p]) => p);
    expect(ssh2).toHaveLength(1);
    const before1 = f.numbers('web').length;
    process.kill(ssh2[0]!, 'SIGKILL');
    // while node 2 is away: a file change of a source that had nothing read yet (fswatch)
    sh(C.web, `echo x > /file-while-away-${target}`);
    await until('the drop said on stderr', () => f.err.includes(`sneakpeek: ${NODE2}: session lost`) && true, 10_000);
    await until('reconnected', () => f.err.includes(`sneakpeek: ${NODE2}: reconnected`) && true, 15_000);
    expect(before1).toBeLessThan(N.web);
    // 2. an instance started after the follower began
    const logFile = path.join(sd.dir, 'log', `execsnoop-${short('api')}.log`);
    const banners = () => (target === 'journal' ? journal(unitApi) : existsSync(logFile) ? readFileSync(logFile, 'utf8') : '').split('Tracing exec in').length;
    const old = banners();
    expect(sd.systemctl('start', unitApi).status).toBe(0);
    await until('api attached', () => banners() > old);
    await sleep(500);
    gen('api');
    await until('api: 60 numbers', () => f.numbers('api').length >= 60 && true);
    // 3. the server side: end every sshd session (both nodes drop)
    const before2 = [f.numbers('web').length, f.numbers('api').length];
    const sessions = sshdSessions();
    expect(sessions.length).toBeGreaterThanOrEqual(2);
    for (const p of sessions) process.kill(p, 'SIGKILL');
    await until('both reconnected', () => (f.err.match(/reconnected/g) ?? []).length >= 3 && true, 20_000);
    expect(before2[0]).toBeLessThan(N.web);
    expect(before2[1]).toBeLessThan(N.api);
    await until('web and api: every number seen', () => f.numbers('web').includes(N.web) && f.numbers('api').includes(N.api) && true, 90_000);
    await sleep(1500); // anything doubled would show by now
    f.proc.kill('SIGINT');
    expect(await f.exit).toBe(130);
    expect(exactlyOnce(f.numbers('web'), N.web)).toEqual({ missing: [], doubled: [] });
    expect(exactlyOnce(f.numbers('api'), N.api)).toEqual({ missing: [], doubled: [] });
    expect(f.events().filter((e) => e.container === 'web' && e.path === `/file-while-away-${target}` && (e.flags as string[]).includes('Created'))).toHaveLength(1);
    // stderr: the drops, the reconnects, the end; no other noise
    const err = f.err.split('\n').filter(Boolean);
    expect(err.filter((l) => /session lost/.test(l)).length).toBeGreaterThanOrEqual(3);
    expect(err.filter((l) => !/: session lost \(.*\); reconnecting in \d+s$|: reconnected; resuming after the last event printed$/.test(l))).toEqual(['interrupted (SIGINT): 2 ok, 0 failed']);
    // the follower left nothing running: its ssh clients are gone
    await until('no ssh left below the follower', () => ![...f.descendants()].some(([, c]) => /^ssh /.test(c)) && true, 5000).catch(() => undefined);
    expect([...f.descendants()].filter(([, c]) => /^ssh /.test(c))).toEqual([]);
    dockerTry('exec', C.web, 'true');
  }, 240_000);
});
