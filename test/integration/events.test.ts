// The shipped bpftrace programs (and fswatch) on this kernel against real containers
// (--network none), their real output read back by lib/events.ts: hostile arguments come back
// byte for byte, TCP connects and accepts over IPv4 and IPv6 loopback, and the drop-and-execute
// marks (LAYER) for an image binary, a binary the container dropped, a chmod'ed image binary
// (copied up) and a binary on a volume. The bpftrace and fswatch processes are started here
// and stopped by their pids; the containers are this file's own.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../lib/config.ts';
import { ExecAssembler, parseBtTcpLine, parseFswatchEvent, textBytes, type ProcmonEvent, type TcpEvent } from '../../lib/events.ts';
import { shQuote } from '../../lib/quote.ts';
import { ROOT } from '../helpers/cli.ts';
import { cleanupContainers, docker, dockerTry, ensureBusyboxImage, runContainer } from '../helpers/docker.ts';
import { commandWorks, dockerUp, isRoot, missing } from '../helpers/prereq.ts';

const skip = missing({
  root: isRoot,
  docker: dockerUp,
  'bpftrace (apt-get install bpftrace)': () => existsSync('/usr/bin/bpftrace'),
  'fswatch (apt-get install fswatch)': () => commandWorks('fswatch', ['--version']),
  perl: () => commandWorks('perl', ['-e', '1']),
});

const TAG = `sp-events-prep-${process.pid}`;
const W = `${TAG}-w`; // busybox, IPv6 on its loopback
const V = `${TAG}-vol`; // the host's /usr (perl) on a volume
const IPV6 = ['--sysctl', 'net.ipv6.conf.all.disable_ipv6=0', '--sysctl', 'net.ipv6.conf.lo.disable_ipv6=0'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A child process whose stdout (bytes, as latin1) is collected; stopped by its pid. */
class Watcher {
  out = '';
  err = '';
  private proc: ChildProcess;

  constructor(cmd: string, args: string[]) {
    this.proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout!.on('data', (c: Buffer) => (this.out += c.toString('latin1')));
    this.proc.stderr!.on('data', (c: Buffer) => (this.err += c.toString('latin1')));
  }

  lines(): string[] {
    return this.out.split('\n');
  }

  async until<T>(get: () => T | undefined, ms = 20_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = get();
      if (v !== undefined) return v;
      if (Date.now() > end || this.proc.exitCode !== null) throw new Error(`not seen within ${ms} ms; stdout:\n${this.out}\nstderr:\n${this.err}`);
      await sleep(200);
    }
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGINT');
    for (let i = 0; i < 50 && this.proc.exitCode === null && this.proc.signalCode === null; i++) await sleep(100);
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

const inodeOf = (c: string) => execFileSync('stat', ['-Lc', '%i', `/proc/${docker('inspect', '-f', '{{.State.Pid}}', c)}/ns/mnt`], { encoding: 'utf8' }).trim();
const bpftrace = (tool: string, ino: string) => new Watcher('/usr/bin/bpftrace', [path.join(ROOT, 'tracers', `${tool}.bt`), ino]);

/**
 * Run a sh script (raw bytes, latin1) inside a container: written to a file first, so every
 * byte arrives. Its exit status does not matter (busybox copies fail: "applet not found"; the
 * exec the test looks for has happened by then).
 */
function shIn(c: string, name: string, script: string): void {
  const file = `/tmp/${name}.sh`;
  execFileSync('docker', ['exec', '-i', c, 'sh', '-c', `cat > ${shQuote(file)}`], { input: Buffer.from(script, 'latin1') });
  dockerTry('exec', c, 'sh', file);
}

let execW: Watcher;
let tcpW: Watcher;
let execV: Watcher;
let fsw: Watcher;
let upperW: string;

/** The complete exec events so far (an event whose arg lines are still on their way is not). */
const execs = (w: Watcher): ProcmonEvent[] => {
  const asm = new ExecAssembler();
  return w.lines().flatMap((l) => asm.push(l));
};
const execOf = (w: Watcher, pred: (e: ProcmonEvent) => boolean) =>
  w.until(() => {
    const found = execs(w).filter(pred);
    return found.length ? found : undefined;
  });

beforeAll(async () => {
  if (skip) return;
  const image = ensureBusyboxImage();
  runContainer(W, image, ...IPV6);
  // The host's perl and its libraries as volumes (Debian 12: /lib and /lib64 are links into /usr).
  const libs = ['/lib', '/lib64'].filter((d) => existsSync(d)).flatMap((d) => ['-v', `${realpathSync(d)}:${d}:ro`]);
  runContainer(V, image, '-v', '/usr:/usr:ro', ...libs);
  upperW = docker('inspect', '-f', '{{.GraphDriver.Data.UpperDir}}', W);
  execW = bpftrace('execsnoop', inodeOf(W));
  tcpW = bpftrace('tcptracer', inodeOf(W));
  execV = bpftrace('execsnoop', inodeOf(V));
  for (const w of [execW, tcpW, execV]) await w.until(() => (/^Tracing .* Ctrl-C to end\.$/m.test(w.out) ? true : undefined), 60_000);
});

afterAll(async () => {
  for (const w of [execW, tcpW, execV, fsw]) await w?.stop();
  cleanupContainers();
});

describe.skipIf(skip)('tracers/execsnoop.bt read back by lib/events.ts', () => {
  it('hostile arguments come back byte for byte: spaces, tab, newline, quotes, $(…), backslashes, empty, non-UTF-8', async () => {
    const args = [
      'two words',
      'tab\there',
      'new\nline',
      `"double" 'single'`,
      '$(id) `id` ${HOME}',
      '',
      '\\x41 is not A \\',
      '\xff\xc0 not UTF-8 \xed\xa0\x80',
      Buffer.from('é ü €', 'utf8').toString('latin1'),
      '  ',
    ];
    shIn(W, 'hostile', `/bin/echo ${args.map(shQuote).join(' ')} >/dev/null\n`);
    const [ev] = await execOf(execW, (e) => e.filename === '/bin/echo' && e.args[1] === 'two words');
    expect(ev).toMatchObject({ ret: 0, comm: 'echo', argc: args.length + 1, layer: 'lower', upperLayer: false });
    expect(ev!.truncated).toBeUndefined();
    expect(ev!.args.map((a) => textBytes(a).toString('latin1'))).toEqual(['/bin/echo', ...args]);
    expect(ev!.args[9]).toBe('é ü €'); // UTF-8 stays readable text
  });

  it('a file name (and so the comm) with a tab and a backslash', async () => {
    const name = '/tmp/t\tb\\x41';
    shIn(W, 'tabname', `cp /bin/busybox ${shQuote(name)}\n(exec -a echo ${shQuote(name)} sp-tabname) >/dev/null\n`);
    const [ev] = await execOf(execW, (e) => e.args[1] === 'sp-tabname');
    expect(ev).toMatchObject({ filename: name, comm: 't\tb\\x41', args: ['echo', 'sp-tabname'], ret: 0 });
  });

  it('long and many arguments: texts cut at 64 bytes and more than 12 arguments are marked', async () => {
    const long = ['a'.repeat(100), 'b'.repeat(64), 'c'.repeat(63), 'd'.repeat(65)];
    shIn(W, 'long', `/bin/true sp-long ${long.join(' ')} 6 7 8 9 10 11 12 13 14\n`);
    const [ev] = await execOf(execW, (e) => e.args[1] === 'sp-long');
    expect(ev!.argc).toBe(15);
    expect(ev!.args).toEqual(['/bin/true', 'sp-long', 'a'.repeat(64), 'b'.repeat(64), 'c'.repeat(63), 'd'.repeat(64), '6', '7', '8', '9', '10', '11']);
    expect(ev!.truncated).toEqual({ args: [2, 5], moreArgs: true });
  });

  it('an exec that fails: RET -2, the caller\'s comm, no layer', async () => {
    shIn(W, 'fail', '/sp-events-nonexistent arg1 || true\n');
    const [ev] = await execOf(execW, (e) => e.filename === '/sp-events-nonexistent');
    expect(ev).toMatchObject({ ret: -2, comm: 'sh', args: ['/sp-events-nonexistent', 'arg1'], upperLayer: null });
    expect(ev!.layer).toBeUndefined();
  });

  it('an exec with no arguments at all (argc 0), by perl from a volume: layer other', async () => {
    dockerTry('exec', V, '/usr/bin/perl', '-e', 'exec {$ARGV[0]} ()', '/bin/true'); // busybox with no argv[0]: exit 127
    const [ev] = await execOf(execV, (e) => e.filename === '/bin/true' && e.argc === 0);
    expect(ev).toMatchObject({ ret: 0, args: [], layer: 'lower', upperLayer: false });
    const [perl] = await execOf(execV, (e) => e.filename === '/usr/bin/perl');
    // A host directory: on an overlay only when the test itself runs in a container.
    const hostOverlay = execFileSync('stat', ['-f', '-c', '%T', '/usr'], { encoding: 'utf8' }).trim() === 'overlayfs';
    expect(perl).toMatchObject({ comm: 'perl', args: ['/usr/bin/perl', '-e', 'exec {$ARGV[0]} ()', '/bin/true'] });
    if (!hostOverlay) expect(perl).toMatchObject({ layer: 'other', upperLayer: false });
  });
});

describe.skipIf(skip)('drop and execute: LAYER on the real overlay', () => {
  it("the image's /bin/ls is not marked", async () => {
    dockerTry('exec', W, '/bin/ls', '/sp-events-ls');
    const [ev] = await execOf(execW, (e) => e.args[1] === '/sp-events-ls');
    expect(ev).toMatchObject({ filename: '/bin/ls', layer: 'lower', upperLayer: false });
  });

  it('a busybox copied to /tmp and run from there is marked: upper', async () => {
    shIn(W, 'drop', 'cp /bin/busybox /tmp/dropped\n/tmp/dropped true\n');
    const [ev] = await execOf(execW, (e) => e.filename === '/tmp/dropped');
    expect(ev).toMatchObject({ comm: 'dropped', args: ['/tmp/dropped', 'true'], layer: 'upper', upperLayer: true });
  });

  // Last of this file's execs in W: it changes every busybox applet of the container.
  it('chmod of an image binary copies it up: it is then marked copyup, and so is every name of it', async () => {
    expect(existsSync(path.join(upperW, 'bin/busybox'))).toBe(false);
    shIn(W, 'chmod', 'chmod 0755 /bin/busybox\n/bin/true sp-chmod\n');
    const [ev] = await execOf(execW, (e) => e.args[1] === 'sp-chmod');
    expect(ev).toMatchObject({ filename: '/bin/true', layer: 'copyup', upperLayer: true });
    expect(existsSync(path.join(upperW, 'bin/busybox'))).toBe(true); // the copy-up, in UpperDir
    dockerTry('exec', W, '/bin/ls', '/sp-events-ls-after');
    const [ls] = await execOf(execW, (e) => e.args[1] === '/sp-events-ls-after');
    expect(ls).toMatchObject({ filename: '/bin/ls', layer: 'copyup', upperLayer: true });
  });
});

describe.skipIf(skip)('tracers/tcptracer.bt read back by lib/events.ts', () => {
  const tcps = (): TcpEvent[] => tcpW.lines().map(parseBtTcpLine).filter((e) => e !== undefined);
  /** A listener (busybox nc) and a client (`client` HOST PORT, retried until it connects) on the container's own loopback. */
  const pair = async (port: number, host: string, client = 'nc') => {
    shIn(W, `tcp${port}`, `nc -l -p ${port} >/dev/null &\nfor i in 1 2 3 4 5 6 7 8 9 10; do echo x | (${client} ${host} ${port}) && break; sleep 0.3; done\n`);
    const connect = await tcpW.until(() => tcps().find((e) => e.kind === 'connect' && e.dport === port));
    const accept = await tcpW.until(() => tcps().find((e) => e.kind === 'accept' && e.sport === port));
    return { connect, accept };
  };

  it('IPv4: connect and accept of one connection, seen from both ends', async () => {
    const { connect, accept } = await pair(8080, '127.0.0.1');
    expect(connect).toMatchObject({ ip: 4, saddr: '127.0.0.1', daddr: '127.0.0.1', dport: 8080, comm: 'nc' });
    // nc listens on an IPv6 socket: the IPv4 peer shows as ::ffff:a.b.c.d
    expect(accept).toMatchObject({ ip: 6, saddr: '::ffff:127.0.0.1', daddr: '::ffff:127.0.0.1', sport: 8080, dport: connect.sport, comm: 'nc' });
  });

  it('IPv6: connect and accept over ::1', async () => {
    const { connect, accept } = await pair(8081, '::1');
    expect(connect).toMatchObject({ ip: 6, saddr: '::1', daddr: '::1', dport: 8081 });
    expect(accept).toMatchObject({ ip: 6, saddr: '::1', daddr: '::1', sport: 8081, dport: connect.sport });
    expect(tcps().filter((e) => e.sport === 8081 || e.dport === 8081)).toHaveLength(2);
  });

  it('a comm with a tab and a backslash comes back exactly', async () => {
    const name = '/tmp/nc\tb\\x41';
    shIn(W, 'ncname', `cp /bin/busybox ${shQuote(name)}\n`);
    const { connect } = await pair(8082, '127.0.0.1', `exec -a nc ${shQuote(name)}`);
    expect(connect.comm).toBe('nc\tb\\x41');
  });
});

describe.skipIf(skip)('fswatch lines read back by lib/events.ts', () => {
  it("a file with a space and a tab in its name, under the container's UpperDir", async () => {
    // fswatch@.service's command line (lib/fswatch.ts fswatchSpec) with the default config
    fsw = new Watcher('fswatch', [...DEFAULTS.fswatch.flags, ...DEFAULTS.fswatch.events.flatMap((e) => ['--event', e]), '--', upperW]);
    await sleep(1500); // fswatch has no start line: give it its watches
    shIn(W, 'fsw', "echo hi > '/tmp/sp events\tfile'\n");
    const ev = await fsw.until(() =>
      fsw.lines().map((l) => parseFswatchEvent(l, upperW)).find((e) => e?.path === '/tmp/sp events\tfile' && e.flags.includes('Created')),
    );
    expect(ev).toMatchObject({ type: 'fswatch', hostPath: `${upperW}/tmp/sp events\tfile` });
    expect(ev.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });
});
