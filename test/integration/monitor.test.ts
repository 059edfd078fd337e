// -t procmon / -t tcptracer with real parts: real containers (--network none; the watched one
// and a second one, both with IPv6 loopback), the real bpftool on this kernel's bpffs, and a
// private systemd (test/helpers/systemd.ts) running the units for real. The bpftrace backend
// is traced end to end; the BCC backend (its python tools cannot run on this kernel: no
// kprobes, no headers) up to the exact argv its unit runs and the map that argv names:
// paths.execsnoop/tcptracer are argv printers here.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config.ts';
import { hexBytesToInode, hostOrder } from '../../lib/endian.ts';
import { ExecAssembler, parseBtTcpLine, type ProcmonEvent, type TcpEvent } from '../../lib/events.ts';
import { tracerSpec } from '../../lib/tracers.ts';
import { renderTemplate } from '../../lib/units.ts';
import { ROOT, runTool, type Run } from '../helpers/cli.ts';
import { cleanupContainers, docker, dockerTry, ensureBusyboxImage, runContainer } from '../helpers/docker.ts';
import { pod } from '../helpers/kube.ts';
import { dockerUp, EBPF, isRoot, missing } from '../helpers/prereq.ts';
import { startPrivateSystemd, systemdAvailable, verifyInstance, type PrivateSystemd } from '../helpers/systemd.ts';

const BPFFS = '/sys/fs/bpf';
const skip = missing({
  root: isRoot,
  docker: dockerUp,
  ...EBPF,
  'systemd, systemd-analyze, nsenter, unshare': systemdAvailable,
});

const W = `sp-monitor-watched-${process.pid}`;
const O = `sp-monitor-other-${process.pid}`;
const IPV6 = ['--sysctl', 'net.ipv6.conf.all.disable_ipv6=0', '--sysctl', 'net.ipv6.conf.lo.disable_ipv6=0'];
const tmp = mkdtempSync(path.join(os.tmpdir(), 'sp-monitor-'));
const canary = path.join(tmp, 'canary');
const printer = path.join(tmp, 'bcc-argv');
let sd: PrivateSystemd;
let cfgFile: string;
let cfgText: string;
let idW: string;
let idO: string;
let inoW: string;

const run = (type: string, args: string[]): Run =>
  runTool('sneakpeek', ['-t', type, ...args], { env: { ...(sd.env as Record<string, string>), SNEAKPEEK_CONFIG: cfgFile } });
const logOf = (tool: string, id: string) => path.join(sd.dir, 'log', `${tool}-${id}.log`);
const logLines = (tool: string, id: string) => (existsSync(logOf(tool, id)) ? readFileSync(logOf(tool, id), 'utf8').split('\n').filter(Boolean) : []);
const mapOf = (id: string) => path.join(BPFFS, `mnt_ns_${id}`);
const inodeOf = (c: string) => execFileSync('stat', ['-Lc', '%i', `/proc/${docker('inspect', '-f', '{{.State.Pid}}', c)}/ns/mnt`], { encoding: 'utf8' }).trim();
const bpftoolJson = (...args: string[]) => JSON.parse(execFileSync('bpftool', ['-j', ...args], { encoding: 'utf8' }));
const keysOf = (file: string): string[] =>
  (bpftoolJson('map', 'dump', 'pinned', file) as { key: string[] }[]).map((e) => hexBytesToInode(e.key, hostOrder()).toString()).sort();
const mainPid = (unit: string) => sd.systemctl('show', '-p', 'MainPID', '--value', unit).stdout.trim();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait until the log has lines (after `from`) matching every pattern; return those lines. */
async function waitLines(tool: string, id: string, from: number, want: RegExp[], ms = 20_000): Promise<string[]> {
  const end = Date.now() + ms;
  for (;;) {
    const fresh = logLines(tool, id).slice(from);
    if (want.every((re) => fresh.some((l) => re.test(l))) || Date.now() > end) return fresh;
    await sleep(200);
  }
}

/** TCP over a container's own loopback: a listener (busybox nc), then a client, retried until it connects. */
function tcp(container: string, port: number, host: string): void {
  docker('exec', '-d', container, 'sh', '-c', `nc -l -p ${port} > /dev/null`);
  docker('exec', container, 'sh', '-c', `for i in 1 2 3 4 5 6 7 8 9 10; do echo x | nc ${host} ${port} && exit 0; sleep 0.3; done; exit 1`);
}

beforeAll(async () => {
  if (skip) return;
  ensureBusyboxImage();
  writeFileSync(printer, '#!/bin/sh\nfor a in "$0" "$@"; do echo "bcc-argv: $a"; done\nexec sleep 100000\n');
  chmodSync(printer, 0o755);
  idW = runContainer(W, 'sneakpeek-test/busybox:1', ...IPV6).slice(0, 12);
  idO = runContainer(O, 'sneakpeek-test/busybox:1', ...IPV6).slice(0, 12);
  inoW = inodeOf(W);
  sd = await startPrivateSystemd('monitor');
  cfgFile = path.join(tmp, 'sneakpeek.config.yaml');
  cfgText = `ssh: {user: root}
sudo: false
unitDir: ${sd.unitDir}
envDir: ${path.join(sd.dir, 'env')}
log: {target: file, dir: ${path.join(sd.dir, 'log')}}
paths: {execsnoop: ${printer}, tcptracer: ${printer}}
`;
  writeFileSync(cfgFile, cfgText);
});

afterAll(async () => {
  cleanupContainers();
  await sd?.stop();
  for (const id of [idW, idO]) if (id) rmSync(mapOf(id), { force: true });
  rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(skip)('execsnoop@ / tcptracer@ verified by systemd-analyze', () => {
  it.each(['execsnoop', 'tcptracer'])('the shipped %s@.service and the test rendering verify clean', (tool) => {
    const shipped = readFileSync(path.join(ROOT, `systemd/${tool}@.service`), 'utf8');
    const cfg = parseConfig(cfgText);
    for (const text of [shipped, renderTemplate(cfg, tracerSpec(cfg, tool as 'execsnoop'))]) {
      const r = verifyInstance(`${tool}@.service`, text, '0123456789ab');
      expect(r.output).toBe('');
      expect(r.status).toBe(0);
    }
  });
});

describe.skipIf(skip)('sneakpeek -t procmon --backend bpftrace on a real systemd', () => {
  it('sets up execsnoop@<ID>: the map holds exactly the container inode, template, program, env file, running unit', () => {
    const r = run('procmon', ['--backend', 'bpftrace', '-n', W]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${W} execsnoop@${idW}.service started ${logOf('execsnoop', idW)} ${inoW} ${mapOf(idW)} created\n`);
    expect(r.code).toBe(0);
    expect(keysOf(mapOf(idW))).toEqual([inoW]);
    expect(bpftoolJson('map', 'show', 'pinned', mapOf(idW))).toMatchObject({ type: 'hash', name: `ns_${idW}`, bytes_key: 8, bytes_value: 4, max_entries: 128 });
    const cfg = parseConfig(cfgText);
    expect(readFileSync(path.join(sd.unitDir, 'execsnoop@.service'), 'utf8')).toBe(renderTemplate(cfg, tracerSpec(cfg, 'execsnoop')));
    expect(readFileSync(path.join(sd.dir, 'env', 'tracers', 'execsnoop.bt'), 'utf8')).toBe(readFileSync(path.join(ROOT, 'tracers/execsnoop.bt'), 'utf8'));
    expect(readFileSync(path.join(sd.dir, 'env', 'execsnoop', `${idW}.env`), 'utf8')).toMatch(
      new RegExp(`^# managed by sneakpeek.*\\nSNEAKPEEK_CONTAINER=${idW}\\nSNEAKPEEK_BACKEND=bpftrace\\nSNEAKPEEK_MNTNS_MAP=${mapOf(idW)}\\nSNEAKPEEK_MNTNS_INODE=${inoW}\\nSNEAKPEEK_ENGINE=docker\\n$`),
    );
    expect(sd.systemctl('is-active', `execsnoop@${idW}.service`).stdout.trim()).toBe('active');
  });

  it('a second run changes nothing: same map, same unit process, "running … present"', () => {
    const before = { map: bpftoolJson('map', 'show', 'pinned', mapOf(idW)).id, pid: mainPid(`execsnoop@${idW}.service`) };
    const r = run('procmon', ['--backend', 'bpftrace', '-n', W]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${W} execsnoop@${idW}.service running ${logOf('execsnoop', idW)} ${inoW} ${mapOf(idW)} present\n`);
    expect(r.code).toBe(0);
    expect(bpftoolJson('map', 'show', 'pinned', mapOf(idW)).id).toBe(before.map);
    expect(keysOf(mapOf(idW))).toEqual([inoW]);
    expect(mainPid(`execsnoop@${idW}.service`)).toBe(before.pid);
  });

  it('docker exec into the watched container is logged with its comm and filename; the host and another container are not', async () => {
    const ready = await waitLines('execsnoop', idW, 0, [/^Tracing exec in mount namespace \d+\.\.\. Ctrl-C to end\.$/]);
    expect(ready.join('\n')).toContain(`Tracing exec in mount namespace ${inoW}...`);
    const from = logLines('execsnoop', idW).length;
    execFileSync('/bin/echo', ['sp-monitor-host-marker'], { stdio: 'ignore' });
    docker('exec', O, 'echo', 'sp-monitor-other-marker');
    docker('exec', W, 'cat', '/etc/motd');
    dockerTry('exec', W, 'ls', '/sp-monitor-watched-marker');
    // A process that outlives its exec line, to check the PID the line names.
    docker('exec', '-d', W, 'sleep', '41');
    const execs = (): ProcmonEvent[] => {
      const asm = new ExecAssembler();
      return logLines('execsnoop', idW).slice(from).flatMap((l) => asm.push(l));
    };
    const find = (args: string[]) => execs().find((e) => JSON.stringify(e.args) === JSON.stringify(args));
    const end = Date.now() + 20_000;
    while (!(find(['cat', '/etc/motd']) && find(['ls', '/sp-monitor-watched-marker']) && find(['sleep', '41'])) && Date.now() < end) await sleep(200);
    await sleep(500);
    const cat = find(['cat', '/etc/motd']);
    expect(cat).toMatchObject({ uid: 0, comm: 'cat', ret: 0, filename: '/bin/cat', layer: 'lower', upperLayer: false });
    expect(cat!.pid).not.toBe(cat!.ppid);
    expect(find(['ls', '/sp-monitor-watched-marker'])).toMatchObject({ uid: 0, comm: 'ls', ret: 0, filename: '/bin/ls' });
    expect(execs().filter((e) => e.args.some((a) => /sp-monitor-(host|other)-marker/.test(a)))).toEqual([]);
    // PID is the host pid of the exec'd process: the sleeper, in the watched container's mount namespace.
    const sleeper = find(['sleep', '41']);
    expect(sleeper).toMatchObject({ uid: 0, comm: 'sleep', ret: 0, filename: '/bin/sleep' });
    expect(sleeper!.pid).not.toBe(sleeper!.ppid);
    // (It ends by itself, or with the container in afterAll.)
    expect(execFileSync('stat', ['-Lc', '%i', `/proc/${sleeper!.pid}/ns/mnt`], { encoding: 'utf8' }).trim()).toBe(inoW);
    expect(readFileSync(`/proc/${sleeper!.pid}/cmdline`, 'utf8')).toBe('sleep\x0041\x00');
  });
});

describe.skipIf(skip)('sneakpeek -t tcptracer --backend bpftrace on a real systemd', () => {
  it('shares the container map with procmon ("present")', () => {
    const r = run('tcptracer', ['--backend', 'bpftrace', '-n', W]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${W} tcptracer@${idW}.service started ${logOf('tcptracer', idW)} ${inoW} ${mapOf(idW)} present\n`);
    expect(r.code).toBe(0);
    expect(keysOf(mapOf(idW))).toEqual([inoW]);
  });

  it('a TCP connect to a listener in the watched container shows as connect and accept, IPv4 and IPv6; another container does not', async () => {
    const ready = await waitLines('tcptracer', idW, 0, [/^Tracing TCP connect and accept in mount namespace \d+/]);
    expect(ready).toContain(`Tracing TCP connect and accept in mount namespace ${inoW}... Ctrl-C to end.`);
    const from = logLines('tcptracer', idW).length;
    tcp(O, 8082, '127.0.0.1');
    tcp(W, 8080, '127.0.0.1');
    tcp(W, 8081, '::1');
    const events = (): TcpEvent[] => logLines('tcptracer', idW).slice(from).map(parseBtTcpLine).filter((e) => e !== undefined);
    const c4 = (e: TcpEvent) => e.kind === 'connect' && e.ip === 4 && e.saddr === '127.0.0.1' && e.daddr === '127.0.0.1' && e.dport === 8080;
    const a4 = (e: TcpEvent) => e.kind === 'accept' && e.ip === 6 && e.saddr === '::ffff:127.0.0.1' && e.daddr === '::ffff:127.0.0.1' && e.sport === 8080;
    const c6 = (e: TcpEvent) => e.kind === 'connect' && e.ip === 6 && e.saddr === '::1' && e.daddr === '::1' && e.dport === 8081;
    const a6 = (e: TcpEvent) => e.kind === 'accept' && e.ip === 6 && e.saddr === '::1' && e.daddr === '::1' && e.sport === 8081;
    const end = Date.now() + 20_000;
    while (![c4, a4, c6, a6].every((f) => events().some(f)) && Date.now() < end) await sleep(200);
    await sleep(500);
    const one = (f: (e: TcpEvent) => boolean) => events().filter(f);
    for (const f of [c4, a4, c6, a6]) expect(one(f)).toHaveLength(1);
    expect(one(c4)[0]).toMatchObject({ comm: 'nc' });
    expect(one(a4)[0]!.dport).toBe(one(c4)[0]!.sport); // the same connection seen from both ends
    expect(one(a6)[0]!.dport).toBe(one(c6)[0]!.sport);
    expect(events().filter((e) => e.sport === 8082 || e.dport === 8082)).toEqual([]);
  });
});

describe.skipIf(skip)('--json and -v', () => {
  it('one JSON object a line; -v names the exact command the unit runs', () => {
    const r = run('tcptracer', ['--backend', 'bpftrace', '-n', W, '--json', '-v']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      container: W, unit: `tcptracer@${idW}.service`, action: 'running', log: logOf('tcptracer', idW),
      id: docker('inspect', '-f', '{{.Id}}', W), inode: Number(inoW), backend: 'bpftrace', map: mapOf(idW), mapState: 'present',
    });
    expect(r.stderr).toContain(`sneakpeek: ${W}: tcptracer@${idW}.service runs /usr/bin/bpftrace ${path.join(sd.dir, 'env', 'tracers', 'tcptracer.bt')} ${inoW}\n`);
  });
});

describe.skipIf(skip)('cluster-wide (--pods-file): one script per node, -e, one failure does not stop the others', () => {
  const gone = 'e'.repeat(64);
  const podsFile = () => {
    const file = path.join(tmp, 'pods.json');
    writeFileSync(file, JSON.stringify({
      kind: 'PodList',
      items: [
        pod({ name: 'web-0', hostIP: '127.0.0.1', containers: [{ name: 'web', id: docker('inspect', '-f', '{{.Id}}', W) }] }),
        pod({ name: 'other-0', hostIP: '127.0.0.1', containers: [{ name: 'other', id: docker('inspect', '-f', '{{.Id}}', O) }] }),
        pod({ name: 'gone-0', hostIP: '127.0.0.1', containers: [{ name: 'gone', id: gone }] }),
        pod({ name: 'skip-0', hostIP: '127.0.0.1', containers: [{ name: 'skip', id: 'd'.repeat(64) }] }),
      ],
    }));
    return file;
  };

  it('--dry-run: one script for the node, every container in it, the excluded pod not', () => {
    const r = run('procmon', ['--backend', 'bpftrace', '--pods-file', podsFile(), '-e', 'skip-0', '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stdout.match(/^# node: /gm)).toEqual(['# node: ']);
    expect(r.stdout).toContain('# node: 127.0.0.1\n');
    expect(r.stdout.match(/^sp_tracer \d+ /gm)).toHaveLength(3);
    expect(r.stdout).not.toContain('d'.repeat(64));
    expect(existsSync(mapOf(idO))).toBe(false);
  });

  it('sets up every container but the excluded one; the gone one fails alone', () => {
    const r = run('procmon', ['--backend', 'bpftrace', '--pods-file', podsFile(), '-e', 'skip-0']);
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual([
      `127.0.0.1,${idO} execsnoop@${idO}.service started ${logOf('execsnoop', idO)} ${inodeOf(O)} ${mapOf(idO)} created`,
      `127.0.0.1,${idW} execsnoop@${idW}.service running ${logOf('execsnoop', idW)} ${inoW} ${mapOf(idW)} present`,
    ].sort());
    expect(r.stderr).toMatch(/^sneakpeek: 127\.0\.0\.1,eeeeeeeeeeee: .*No such container/m);
    expect(r.stderr.trimEnd().split('\n').pop()).toBe('2 ok, 1 failed');
    expect(r.code).toBe(1);
    expect(keysOf(mapOf(idO))).toEqual([inodeOf(O)]);
    expect(existsSync(mapOf('eeeeeeeeeeee'))).toBe(false);
    expect(existsSync(mapOf('dddddddddddd'))).toBe(false);
  });
});

describe.skipIf(skip)('the BCC backend: the exact command its unit runs, and the map that command reads', () => {
  it.each([
    ['procmon', 'execsnoop', ['-T', '-U', '-x']],
    ['tcptracer', 'tcptracer', ['-t']],
  ] as const)('-t %s: switching the instance to bcc restarts it with %s … --mntnsmap MAP', async (type, tool, flags) => {
    const from = logLines(tool, idW).length;
    const r = run(type, ['-n', W]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${W} ${tool}@${idW}.service restarted ${logOf(tool, idW)} ${inoW} ${mapOf(idW)} present\n`);
    expect(r.code).toBe(0);
    const lines = await waitLines(tool, idW, from, [/^bcc-argv: --mntnsmap$/]);
    await sleep(300);
    expect(lines.filter((l) => l.startsWith('bcc-argv: ')).map((l) => l.slice('bcc-argv: '.length))).toEqual([printer, ...flags, '--mntnsmap', mapOf(idW)]);
    expect(lines).toContain(`sneakpeek ${tool}: container ${idW} mount namespace ${inoW} backend bcc map ${mapOf(idW)}`);
    // What --mntnsmap names holds exactly the container's mount namespace.
    expect(keysOf(mapOf(idW))).toEqual([inodeOf(W)]);
    expect(sd.systemctl('show', '-p', 'MainPID', '--value', `${tool}@${idW}.service`).stdout.trim()).not.toBe('0');
  });
});

describe.skipIf(skip)('a stale key in the container map (an earlier mount namespace of the same container id)', () => {
  it('the rerun removes it, with a warning, and changes nothing else', () => {
    // docker restart gives the container a new namespace, but the kernel hands the freed inode
    // number straight back: plant the earlier namespace's key directly instead.
    execFileSync('bpftool', ['map', 'update', 'pinned', mapOf(idW), 'key', 'hex', '01', '00', '00', 'f0', '00', '00', '00', '00', 'value', 'hex', '00', '00', '00', '00']);
    expect(keysOf(mapOf(idW))).toHaveLength(2);
    const pid = mainPid(`execsnoop@${idW}.service`);
    const r = run('procmon', ['-n', W]);
    expect(r.stderr).toBe(`sneakpeek: warning: ${W}: removed 1 stale key(s) from ${mapOf(idW)} (an earlier mount namespace of this container)\n`);
    expect(r.stdout).toBe(`${W} execsnoop@${idW}.service running ${logOf('execsnoop', idW)} ${inoW} ${mapOf(idW)} present\n`);
    expect(r.code).toBe(0);
    expect(keysOf(mapOf(idW))).toEqual([inoW]);
    expect(mainPid(`execsnoop@${idW}.service`)).toBe(pid);
  });
});

describe.skipIf(skip)('bad input: one line, exit 2, nothing done', () => {
  it.each([
    ['a hostile container name', ['procmon', ['-n', `$(touch ${canary})`]], /^sneakpeek: invalid container name/],
    ['a backquoted name', ['tcptracer', ['-n', '`touch canary`']], /^sneakpeek: invalid container name/],
    ['an unknown backend', ['procmon', ['--backend', 'dtrace', '-n', W]], /backend.*must be one of bcc, bpftrace/],
    ['--purge without --stop', ['procmon', ['--purge', '-n', W]], /--purge goes with --stop/],
    ['--backend for another type', ['files', ['--backend', 'bpftrace', '-n', W]], /--backend does not apply to -t files \(only to -t procmon, -t tcptracer\)/],
  ] as const)('%s', (_what, [type, args], msg) => {
    const r = run(type, [...args]);
    expect(r.stderr).toMatch(msg);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toBe('');
    expect(r.code).toBe(2);
    expect(existsSync(canary)).toBe(false);
  });

  it('a container that does not exist: exit 1, one line, no map', () => {
    const r = run('procmon', ['-n', 'sp-monitor-nonexistent']);
    expect(r.stderr).toMatch(/^sneakpeek: sp-monitor-nonexistent: .*No such container: sp-monitor-nonexistent\n$/);
    expect(r.stdout).toBe('');
    expect(r.code).toBe(1);
  });
});

describe.skipIf(skip)('teardown: --stop [--purge] leaves nothing of ours behind', () => {
  it('--stop procmon keeps the map while tcptracer@ of the same container is configured', () => {
    const r = run('procmon', ['--stop', '-n', W]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${W} execsnoop@${idW}.service stopped ${mapOf(idW)} kept\n`);
    expect(r.code).toBe(0);
    expect(sd.systemctl('is-active', `execsnoop@${idW}.service`).stdout.trim()).toBe('inactive');
    expect(existsSync(path.join(sd.dir, 'env', 'execsnoop', `${idW}.env`))).toBe(false);
    expect(keysOf(mapOf(idW))).toEqual([inoW]);
  });

  it('--stop --purge tcptracer removes the instance, the map, the template and the program', () => {
    const r = run('tcptracer', ['--stop', '--purge', '-n', W]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${W} tcptracer@${idW}.service stopped ${mapOf(idW)} removed\n`);
    expect(r.code).toBe(0);
    expect(existsSync(mapOf(idW))).toBe(false);
    expect(existsSync(path.join(sd.unitDir, 'tcptracer@.service'))).toBe(false);
    expect(existsSync(path.join(sd.dir, 'env', 'tracers', 'tcptracer.bt'))).toBe(false);
    // execsnoop@ of the other container still runs: its template and program stay.
    expect(existsSync(path.join(sd.unitDir, 'execsnoop@.service'))).toBe(true);
    expect(existsSync(path.join(sd.dir, 'env', 'tracers', 'execsnoop.bt'))).toBe(true);
  });

  it('a removed container is torn down by its id; then nothing of ours is left, and again is a no-op', () => {
    dockerTry('rm', '-f', O);
    const r = run('procmon', ['--stop', '--purge', '-n', idO, '-v']);
    expect(r.stdout).toBe(`${idO} execsnoop@${idO}.service stopped ${mapOf(idO)} removed\n`);
    expect(r.stderr).toContain(`${path.join(sd.unitDir, 'execsnoop@.service')} removed`);
    expect(r.code).toBe(0);
    expect(readdirSync(BPFFS).filter((f) => f === `mnt_ns_${idW}` || f === `mnt_ns_${idO}`)).toEqual([]);
    expect(existsSync(path.join(sd.dir, 'env'))).toBe(false);
    expect(readdirSync(sd.unitDir).filter((f) => /^(execsnoop|tcptracer)@/.test(f))).toEqual([]);
    expect(sd.systemctl('list-units', '--all', '--plain', '--no-legend', 'execsnoop@*', 'tcptracer@*').stdout.trim()).toBe('');
    // The logs are the user's: kept.
    expect(existsSync(logOf('execsnoop', idW))).toBe(true);
    for (const type of ['procmon', 'tcptracer']) {
      const again = run(type, ['--stop', '--purge', '-n', W]);
      expect(again.stderr).toBe('');
      expect(again.stdout).toBe(`${W} ${type === 'procmon' ? 'execsnoop' : 'tcptracer'}@${idW}.service absent ${mapOf(idW)} absent\n`);
      expect(again.code).toBe(0);
    }
  });
});
