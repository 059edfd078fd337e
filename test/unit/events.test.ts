// lib/events.ts against real output. BCC: lines from iovisor/bcc's own documentation,
// tools/execsnoop_example.txt and tools/tcptracer_example.txt (commit 6d0a964c, cited per
// case). bpftrace and fswatch: test/fixtures/events/*.txt, captured verbatim (stdout) on this
// machine (kernel 6.18, bpftrace 0.17, fswatch 1.14) from the shipped programs against a real
// busybox container (--network none), by the commands test/integration/events.test.ts runs.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BCC_EXEC_DEFAULT,
  BT_EXEC_MAX_ARGS,
  bccExecColumnsOf,
  bccExecHeader,
  btTime,
  bytesText,
  decodeBtText,
  ExecAssembler,
  parseBccExecLine,
  parseBccTcpLine,
  parseBtExecLine,
  parseBtTcpLine,
  parseFswatchEvent,
  textBytes,
  type ProcmonEvent,
} from '../../lib/events.ts';
import { BCC_FLAGS } from '../../lib/tracers.ts';
import { ROOT } from '../helpers/cli.ts';

const fixture = (name: string) => readFileSync(path.join(ROOT, 'test/fixtures/events', name), 'latin1').split('\n');
const assemble = (lines: string[]) => {
  const a = new ExecAssembler();
  return [...lines.flatMap((l) => a.push(l)), ...a.flush()];
};

describe('decodeBtText: bpftrace %r / %rx output back to bytes', () => {
  it.each([
    ['/bin/ls', '/bin/ls'],
    ['', ''],
    [`q"'$(id)`, `q"'$(id)`],
    ['a b', 'a b'],
    ['x\\x0ay\\x09z', 'x\ny\tz'],
    ['\\x61\\x5c\\x78\\x34\\x31', 'a\\x41'], // %rx of a text with a backslash
    ['\\xc3\\xa9', 'é'], // UTF-8 reads as itself
  ])('%j → %j', (field, want) => {
    expect(decodeBtText(field)).toBe(want);
  });

  it.each(['a\\', 'a\\n', '\\x4', '\\xZZ', 'tab\there', 'é'])('%j is not %%r output', (field) => {
    expect(decodeBtText(field)).toBeUndefined();
  });

  it('bytes that are not UTF-8 survive (surrogateescape) and textBytes gives them back', () => {
    const raw = Buffer.from([0x61, 0x09, 0xff, 0xc0, 0x7a, 0xe2, 0x82, 0xac, 0xed, 0xa0, 0x80, 0xf0]);
    const s = bytesText(raw);
    expect(s.startsWith('a\t\udcff\udcc0z€')).toBe(true);
    expect(textBytes(s)).toEqual(raw);
    expect(textBytes('plain € text')).toEqual(Buffer.from('plain € text'));
  });
});

describe('btTime', () => {
  it.each([
    ['2026-12-01T15:36:41.650025+0000', '2026-12-01T15:36:41.650025+00:00'],
    ['2026-12-01T16:36:41.650025+0100', '2026-12-01T16:36:41.650025+01:00'],
    ['2026-12-01T15:36:41+0000', undefined],
    ['TIME', undefined],
  ])('%s → %s', (s, want) => {
    expect(btTime(s)).toBe(want);
  });
});

describe('tracers/execsnoop.bt lines (fixture execsnoop-bt.txt)', () => {
  const lines = fixture('execsnoop-bt.txt');
  const events = assemble(lines);
  const by = (pred: (e: ProcmonEvent) => boolean) => events.filter(pred);

  it('banner, header and blank lines are not events; every exec line becomes one event', () => {
    expect(lines.slice(0, 3).map(parseBtExecLine)).toEqual([undefined, undefined, undefined]);
    expect(lines[1]).toMatch(/^Tracing exec in mount namespace \d+\.\.\. Ctrl-C to end\.$/);
    const execLines = lines.filter((l) => parseBtExecLine(l)?.line === 'exec');
    expect(events).toHaveLength(execLines.length);
    expect(events.every((e) => !e.truncated?.moreArgs || (e.argc ?? 0) > 12)).toBe(true);
  });

  it.each([
    [
      'the image binary /bin/ls: layer lower',
      (e: ProcmonEvent) => e.filename === '/bin/ls',
      { time: '2026-12-01T15:36:41.650025+00:00', pid: 20739, ppid: 20728, uid: 0, comm: 'ls', ret: 0, args: ['/bin/ls', '/etc'], layer: 'lower', upperLayer: false, argc: 2 },
    ],
    [
      'a busybox copied to /tmp and run: layer upper',
      (e: ProcmonEvent) => e.filename === '/tmp/dropped',
      { comm: 'dropped', ret: 0, args: ['/tmp/dropped', 'true'], layer: 'upper', upperLayer: true },
    ],
    [
      'hostile arguments: tab, newline, backslash, non-UTF-8 bytes, an empty one, quotes and $(…)',
      (e: ProcmonEvent) => e.filename === '/bin/echo' && e.args.length === 4,
      { comm: 'echo', args: ['/bin/echo', bytesText(Buffer.from('a\tb\nc\\x41 \xff\xc0z', 'latin1')), '', `q"'$(id)`], argc: 4 },
    ],
    [
      'a failed exec: RET -2, the caller\'s comm, layer unknown',
      (e: ProcmonEvent) => e.ret < 0,
      { pid: 20827, comm: 'sh', ret: -2, filename: '/nonexistent', args: ['/nonexistent', 'arg1'], upperLayer: null },
    ],
    [
      'a file name with a tab and a backslash (and the comm it gives)',
      (e: ProcmonEvent) => e.filename.startsWith('/tmp/ta') && e.args[0] === 'echo',
      { comm: 'ta\tb\\x41', filename: '/tmp/ta\tb\\x41', args: ['echo', 'hi'], layer: 'upper', upperLayer: true },
    ],
    [
      'an image binary after chmod (copied up): layer copyup, in the upper layer',
      (e: ProcmonEvent) => e.filename === '/bin/true' && e.args.length === 1,
      { comm: 'true', args: ['/bin/true'], layer: 'copyup', upperLayer: true },
    ],
  ])('%s', (_name, pick, want) => {
    const found = by(pick);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject(want);
    expect(found[0]!.truncated).toBeUndefined();
  });

  it('more than 12 arguments: the first 12, ARGC 15, marked', () => {
    const [e] = by((x) => x.argc === 15);
    expect(e!.args).toEqual(['/bin/true', ...Array.from({ length: 11 }, (_, i) => String(i + 1))]);
    expect(e!.truncated).toEqual({ moreArgs: true });
  });

  it('an argument longer than 64 bytes is cut and marked; one of exactly 64 is whole', () => {
    const [e] = by((x) => x.filename === '/bin/echo' && x.args.length === 3);
    expect(e!.args).toEqual(['/bin/echo', 'a'.repeat(64), 'b'.repeat(64)]);
    expect(e!.truncated).toEqual({ args: [1] });
  });

  it('an exec with no arguments at all (argc 0; fixture execsnoop-bt-argc0.txt)', () => {
    const evs = assemble(fixture('execsnoop-bt-argc0.txt'));
    expect(evs.map((e) => [e.filename, e.argc, e.args, e.layer])).toEqual([
      ['/usr/bin/perl', 4, ['perl', '-e', 'exec {$ARGV[0]} ()', '/bin/true'], 'other'],
      ['/bin/true', 0, [], 'other'],
    ]);
  });

  it('lines of two execs interleaved (two CPUs) still join by TIME and PID; lost lines show on flush', () => {
    const a = lines.filter((l) => l.includes('\t20739\t')); // ls: exec + 2 args
    const b = lines.filter((l) => l.includes('\t20827\t')); // failed exec + 2 args
    const mixed = [a[0]!, b[0]!, a[1]!, b[1]!, b[2]!, a[2]!];
    const asm = new ExecAssembler();
    const out = mixed.flatMap((l) => asm.push(l));
    expect(out.map((e) => [e.pid, e.args])).toEqual([
      [20827, ['/nonexistent', 'arg1']],
      [20739, ['/bin/ls', '/etc']],
    ]);
    const lost = new ExecAssembler();
    expect([a[0]!, a[1]!].flatMap((l) => lost.push(l))).toEqual([]);
    const [half] = lost.flush();
    expect(half).toMatchObject({ args: ['/bin/ls'], truncated: { moreArgs: true } });
  });

  it('BT_EXEC_MAX_ARGS is the number of arg lines the program prints (its unroll)', () => {
    const prog = readFileSync(path.join(ROOT, 'tracers/execsnoop.bt'), 'utf8');
    expect(prog.match(/unroll \((\d+)\) \{\n\t\tif \(\$i < \$na\)/)?.[1]).toBe(String(BT_EXEC_MAX_ARGS));
  });

  it.each([
    'sneakpeek execsnoop: container 0123456789ab mount namespace 4026532178 backend bpftrace map /sys/fs/bpf/mnt_ns_0123456789ab',
    'ERROR: Unknown error -1: couldn\'t set RLIMIT_MEMLOCK for bpftrace. If your program is not loading, you can try "ulimit -l 8192" to fix the problem',
    'Attaching 6 probes...',
    'TIME\tPID\tPPID\tUID\tRET\tARGC\tCUT\tLAYER\tCOMM\tFILENAME',
    '2026-12-01T15:36:41.650025+0000\t20739\t20728\t0\t0\t2\t0\tnowhere\tls\t/bin/ls',
    '2026-12-01T15:36:41.650025+0000\t20739\t20728\t0\t0\t2\t0\tlower\tls',
    '2026-12-01T15:36:41.650025+0000\t20739\targ\t0\t0\tbad\\escape',
    '2026-12-01T15:36:41.650025+0000\t20739\targ\tx\t0\tls',
  ])('not a line of execsnoop.bt: %j', (line) => {
    expect(parseBtExecLine(line)).toBeUndefined();
  });
});

describe('tracers/tcptracer.bt lines (fixture tcptracer-bt.txt)', () => {
  const lines = fixture('tcptracer-bt.txt');
  const events = lines.map(parseBtTcpLine).filter((e) => e !== undefined);

  it('banner, header and blank lines are not events', () => {
    expect(lines[1]).toMatch(/^Tracing TCP connect and accept in mount namespace \d+\.\.\. Ctrl-C to end\.$/);
    expect(lines.slice(0, 3).map(parseBtTcpLine)).toEqual([undefined, undefined, undefined]);
    expect(events).toHaveLength(6);
  });

  it.each([
    [0, { time: '2026-12-01T15:36:43.124414+00:00', kind: 'connect', ip: 4, saddr: '127.0.0.1', sport: 56536, daddr: '127.0.0.1', dport: 8080, pid: 21201, comm: 'nc' }],
    [1, { kind: 'accept', ip: 6, saddr: '::ffff:127.0.0.1', sport: 8080, daddr: '::ffff:127.0.0.1', dport: 56536, pid: 21007, comm: 'nc' }],
    [2, { kind: 'connect', ip: 6, saddr: '::1', sport: 59220, daddr: '::1', dport: 8081 }],
    [3, { kind: 'accept', ip: 6, saddr: '::1', sport: 8081, daddr: '::1', dport: 59220 }],
    [4, { kind: 'connect', ip: 4, dport: 8082, comm: 'ta\tb\\x41' }],
  ])('event %i', (i, want) => {
    expect(events[i]).toMatchObject({ type: 'tcptracer', ...want });
  });

  it.each([
    'TIME\tKIND\tIP\tSADDR\tSPORT\tDADDR\tDPORT\tPID\tCOMM',
    '2026-12-01T15:36:43.124414+0000\tclose\t4\t127.0.0.1\t56536\t127.0.0.1\t8080\t21201\tnc',
    '2026-12-01T15:36:43.124414+0000\tconnect\t4\t::1\t56536\t127.0.0.1\t8080\t21201\tnc',
  ])('not a line of tcptracer.bt: %j', (line) => {
    expect(parseBtTcpLine(line)).toBeUndefined();
  });
});

describe('BCC execsnoop (tools/execsnoop_example.txt)', () => {
  it('sneakpeek runs it with BCC_FLAGS (-T -U -x): the default columns are its header', () => {
    // The header printf of tools/execsnoop.py (v0.26.0, Debian 12's bpfcc-tools) with -T -U:
    // "%-9s" TIME, "%-6s" UID, "%-16s %-7s %-7s %3s %s" PCOMM PID PPID RET ARGS.
    expect(BCC_EXEC_DEFAULT).toEqual(bccExecColumnsOf(BCC_FLAGS.execsnoop));
    expect(bccExecHeader('TIME     UID   PCOMM            PID     PPID    RET ARGS')).toEqual(BCC_EXEC_DEFAULT);
  });

  it.each([
    ['COMM             PID    RET ARGS', ['COMM', 'PID', 'RET', 'ARGS']],
    ['TIME     TIME(s) COMM             PID    PPID  RET ARGS', ['TIME', 'TIME(s)', 'COMM', 'PID', 'PPID', 'RET', 'ARGS']],
    ['COMM             PID    PPID   RET ARGS', ['COMM', 'PID', 'PPID', 'RET', 'ARGS']],
    ['UID   COMM             PID    PPID   RET ARGS', ['UID', 'COMM', 'PID', 'PPID', 'RET', 'ARGS']],
    ['bash             15887    0 /usr/bin/man ls', undefined],
  ])('header %j', (line, want) => {
    expect(bccExecHeader(line)).toEqual(want);
  });

  it.each([
    // "# ./execsnoop" (lines 8-9): no PPID column in that version
    ['COMM             PID    RET ARGS', 'bash             15887    0 /usr/bin/man ls', { comm: 'bash', pid: 15887, ppid: null, uid: null, ret: 0, filename: '/usr/bin/man', args: ['/usr/bin/man', 'ls'] }],
    ['COMM             PID    RET ARGS', 'preconv          15894    0 /usr/bin/preconv -e UTF-8', { comm: 'preconv', args: ['/usr/bin/preconv', '-e', 'UTF-8'] }],
    // "# ./execsnoop -x" (line 40): a failed exec
    ['COMM             PID    RET ARGS', 'run              9660    -2 /usr/local/bin/setuidgid nobody /command/multilog t ./main', { comm: 'run', pid: 9660, ret: -2, filename: '/usr/local/bin/setuidgid', args: ['/usr/local/bin/setuidgid', 'nobody', '/command/multilog', 't', './main'] }],
    // "# ./execsnoop -Ttn mount" (line 61)
    ['TIME     TIME(s) COMM             PID    PPID  RET ARGS', '14:08:23 2.849   mount            18049  1045    0 /bin/mount -p', { time: null, clock: '14:08:23', comm: 'mount', pid: 18049, ppid: 1045, ret: 0, args: ['/bin/mount', '-p'] }],
    // "# ./execsnoop.py -l testpkg" (line 73): 7-digit pids fill PID's column
    ['COMM             PID    PPID   RET ARGS', 'python           3344856 4146419   0 /usr/local/bin/python /usr/local/bin/yum remove testpkg', { comm: 'python', pid: 3344856, ppid: 4146419, args: ['/usr/local/bin/python', '/usr/local/bin/yum', 'remove', 'testpkg'] }],
    // "# ./execsnoop -U" (line 93)
    ['UID   COMM             PID    PPID   RET ARGS', '1000  ls               171318 133702   0 /bin/ls --color=auto', { uid: 1000, comm: 'ls', pid: 171318, ppid: 133702, ret: 0, filename: '/bin/ls', args: ['/bin/ls', '--color=auto'] }],
  ])('%s | %s', (header, line, want) => {
    const ev = parseBccExecLine(line, bccExecHeader(header));
    expect(ev).toMatchObject({ type: 'procmon', upperLayer: null, ...want });
  });

  // BCC prints arguments raw: one with CR, U+2028 or U+2029 (which a regex's `.` does not match) must not hide the exec.
  it.each(['a\rb', 'a\u2028b', 'a\u2029b'])('an argument with a line-ending character is still an exec: %j', (arg) => {
    const ev = parseBccExecLine(`12:00:00 0     sh               4242    1       0 /bin/sh -c ${arg}`);
    expect(ev).toMatchObject({ pid: 4242, args: ['/bin/sh', '-c', arg] });
    expect(parseBccExecLine(`12:00:00 0     ${arg.padEnd(16)} 4242    1       0 /bin/true`)).toMatchObject({ comm: arg, pid: 4242 });
  });

  it('BCC marks arguments past --max-args with a last "..."', () => {
    // "%-16s %-7d %-7s %3d %s" of tools/execsnoop.py with the "..." it submits for argv[20] and on
    const ev = parseBccExecLine('12:00:00 0     sh               4242    1       0 /bin/sh -c true ...');
    expect(ev).toMatchObject({ clock: '12:00:00', uid: 0, comm: 'sh', pid: 4242, ppid: 1, args: ['/bin/sh', '-c', 'true'], truncated: { moreArgs: true } });
  });

  it.each([
    '',
    'COMM             PID    RET ARGS',
    '[...]',
    'TIME     UID   PCOMM            PID     PPID    RET ARGS',
    'sneakpeek execsnoop: container 0123456789ab mount namespace 4026532178 backend bcc map /sys/fs/bpf/mnt_ns_0123456789ab',
  ])('not an event: %j', (line) => {
    expect(parseBccExecLine(line)).toBeUndefined();
  });
});

describe('BCC tcptracer (tools/tcptracer_example.txt)', () => {
  it.each([
    // "# ./tcptracer" (lines 12-19)
    ['C  28943  telnet           4  192.168.1.2      192.168.1.1      59306  23', { kind: 'connect', ip: 4, pid: 28943, comm: 'telnet', saddr: '192.168.1.2', daddr: '192.168.1.1', sport: 59306, dport: 23 }],
    ['C  28818  curl             6  [::1]            [::1]            55758  80', { kind: 'connect', ip: 6, saddr: '::1', daddr: '::1', sport: 55758, dport: 80 }],
    ['X  28943  telnet           4  192.168.1.2      192.168.1.1      59306  23', { kind: 'close', pid: 28943 }],
    ['A  28817  nc               6  [::1]            [::1]            80     55758', { kind: 'accept', comm: 'nc', sport: 80, dport: 55758 }],
    ['A  28978  nc               4  10.202.210.1     10.202.109.12    8080   59160', { kind: 'accept', saddr: '10.202.210.1', daddr: '10.202.109.12' }],
    // "# ./tcptracer -t" (lines 34-36)
    ['0.000    C  31002  telnet           4  192.168.1.2      192.168.1.1      42590  23', { time: null, clock: '0.000', kind: 'connect', pid: 31002 }],
    ['3.546    C    748  curl             6  [::1]            [::1]            42592  80', { clock: '3.546', pid: 748, comm: 'curl', saddr: '::1' }],
  ])('%s', (line, want) => {
    expect(parseBccTcpLine(line)).toMatchObject({ type: 'tcptracer', ...want });
  });

  it.each(['a\rb', 'a\u2028b'])('a comm with a line-ending character is still an event: %j', (comm) => {
    expect(parseBccTcpLine(`C  28943  ${comm.padEnd(16)} 4  192.168.1.2      192.168.1.1      59306  23`)).toMatchObject({ comm, pid: 28943 });
  });

  it.each([
    'Tracing TCP established connections. Ctrl-C to end.',
    'T  PID    COMM             IP SADDR            DADDR            SPORT  DPORT',
    'TIME(s)  T  PID    COMM             IP SADDR            DADDR            SPORT  DPORT',
    '',
    'sneakpeek tcptracer: container 0123456789ab mount namespace 4026532178 backend bcc map /sys/fs/bpf/mnt_ns_0123456789ab',
  ])('not an event: %j', (line) => {
    expect(parseBccTcpLine(line)).toBeUndefined();
  });
});

describe('fswatch lines (fixture fswatch.txt)', () => {
  const lines = fixture('fswatch.txt').filter(Boolean);
  const upperOf = (l: string) => /^\S+ (\/var\/lib\/docker\/overlay2\/[0-9a-f]+\/diff)/.exec(l)![1]!;

  it.each([
    [0, { path: '/', flags: ['AttributeModified'] }],
    [1, { path: '/tmp', flags: ['Created', 'MovedTo'] }],
    [3, { time: '2026-12-01T15:37:10Z', path: '/tmp/new.txt', flags: ['Created'] }],
    [7, { path: '/tmp/new.txt', flags: ['Removed'] }],
    [11, { path: '/tmp/with space\ttab', flags: ['Created'] }],
    [14, { path: '/tmp/with space\ttab', flags: ['Removed', 'MovedFrom'] }],
    [15, { path: '/tmp/moved', flags: ['Created', 'MovedTo'] }],
  ])('line %i', (i, want) => {
    const line = lines[i]!;
    const ev = parseFswatchEvent(line, upperOf(line));
    expect(ev).toMatchObject({ type: 'fswatch', ...want });
    expect(ev!.hostPath).toBe(upperOf(line) + (want.path === '/' ? '' : want.path));
  });

  it('a path outside UpperDir has no container path', () => {
    expect(parseFswatchEvent(lines[3]!, '/elsewhere')).toMatchObject({ path: null });
  });

  // A name with CR, U+2028 or U+2029 (which a regex's `.` does not match) must not hide the event.
  it.each(['cr\rx', 'ls\u2028x', 'ps\u2029x', 'nel\u0085x'])('a name with a line-ending character is still an event: %j', (name) => {
    const up = '/var/lib/docker/overlay2/0123/diff';
    expect(parseFswatchEvent(`2026-12-01T15:37:10Z ${up}/tmp/${name} Created Updated`, up)).toMatchObject({ path: `/tmp/${name}`, flags: ['Created', 'Updated'] });
  });
});
