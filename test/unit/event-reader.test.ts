// lib/event-reader.ts: --since, the node steps, and one source read across sessions — cut at every
// line, resumed where the reader says: every event exactly once (execs whose lines interleave,
// cut in the middle, included). Lines are the real captures in test/fixtures/events.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULTS, type Config } from '../../lib/config.ts';
import { envValues, eventTimeMs, parseSince, readStep, sourceStep, SourceReader, usecTime, type EventType } from '../../lib/event-reader.ts';
import type { MonitorEvent } from '../../lib/events.ts';
import { eventsScript, sourcesOf } from '../../scripts/sneakpeek/events.ts';
import { ROOT } from '../helpers/cli.ts';

const fixture = (name: string) => readFileSync(path.join(ROOT, 'test/fixtures/events', name), 'latin1').split('\n');
const NOW = Date.UTC(2026, 11, 1, 12, 0, 0);

describe('parseSince', () => {
  it.each([
    ['30s', '-30', NOW - 30_000],
    ['10m', '-600', NOW - 600_000],
    ['2h', '-7200', NOW - 7_200_000],
    ['1d', '-86400', NOW - 86_400_000],
    ['0s', '-0', NOW],
    ['2026-12-01T11:00:00Z', `@${NOW / 1000 - 3600}`, NOW - 3_600_000],
    ['2026-12-01T11:00:00.250Z', `@${NOW / 1000 - 3600}`, NOW - 3_600_000 + 250],
    ['2026-12-01T13:00:00+02:00', `@${NOW / 1000 - 3600}`, NOW - 3_600_000],
    ['2026-12-01T10:30:00-0030', `@${NOW / 1000 - 3600}`, NOW - 3_600_000],
    ['2026-12-01 11:00Z', `@${NOW / 1000 - 3600}`, NOW - 3_600_000],
  ])('%s', (text, node, cutoff) => {
    expect(parseSince(text, NOW)).toEqual({ node, cutoffMs: cutoff });
  });

  it('a time before 1970 is the epoch for the node (which takes no negative @EPOCH): everything', () => {
    expect(parseSince('1969-06-01T00:00:00Z', NOW)).toEqual({ node: '@0', cutoffMs: Date.UTC(1969, 5, 1) });
    expect(parseSince('1900-01-01', NOW).node).toBe('@0');
  });

  it('a time without a zone is this machine\'s local time', () => {
    const local = new Date(2026, 11, 1, 11, 0, 0).getTime();
    expect(parseSince('2026-12-01T11:00:00', NOW)).toEqual({ node: `@${local / 1000}`, cutoffMs: local });
    expect(parseSince('2026-12-01', NOW).cutoffMs).toBe(new Date(2026, 11, 1).getTime());
  });

  it.each(['10', '10 m', '10min', 'yesterday', '2026-13-01', '2026-02-30T00:00Z', '2026-12-01T25:00Z', '-10m', '@1700000000', '', '1e3s'])('%j is refused', (text) => {
    expect(() => parseSince(text, NOW)).toThrow(/--since/);
  });
});

describe('times', () => {
  it.each([
    ['1764590400000000', '2025-12-01T12:00:00.000000Z'],
    ['1764590400123456', '2025-12-01T12:00:00.123456Z'],
    ['', null],
    ['12x', null],
  ])('usecTime(%j)', (usec, want) => expect(usecTime(usec)).toBe(want));

  it.each([
    ['2026-12-01T15:36:41.650025+00:00', Date.UTC(2026, 11, 1, 15, 36, 41, 650)],
    ['2026-12-01T15:36:41Z', Date.UTC(2026, 11, 1, 15, 36, 41)],
    ['2026-12-01T16:36:41.1+01:00', Date.UTC(2026, 11, 1, 15, 36, 41, 100)],
    [null, undefined],
    ['15:36:41', undefined],
  ])('eventTimeMs(%j)', (t, want) => expect(eventTimeMs(t)).toBe(want));
});

describe('node steps', () => {
  const cfg: Config = { ...DEFAULTS, log: { target: 'file', dir: '/var/log/sp/' } };
  it.each([
    ['a known id', { key: 3, tool: 'execsnoop', engine: 'docker', name: 'web', id: 'abcdef0123456789ffff', resume: '-' },
      "sp_ev_id 3 execsnoop abcdef012345 abcdef0123456789ffff '-' /etc/sneakpeek/execsnoop"],
    ['the engine names it', { key: 0, tool: 'fswatch', engine: 'podman', name: "we'b", resume: 's=1;i=2' },
      "sp_ev_name 0 fswatch podman 'we'\\''b' 's=1;i=2' /etc/sneakpeek/fswatch"],
  ] as const)('%s', (_n, plan, want) => expect(sourceStep(cfg, plan)).toBe(want));

  it.each([
    [{ follow: false }, 'sp_events file /var/log/sp'],
    [{ follow: true, since: { node: '-600', cutoffMs: 0 } }, "sp_events '-f' '-s' '-600' file /var/log/sp"],
    [{ follow: false, since: { node: '@1700000000', cutoffMs: 0 } }, "sp_events '-s' @1700000000 file /var/log/sp"],
  ])('readStep %j', (o, want) => expect(readStep(cfg, o)).toBe(want));

  it('a container id from discovery that makes no instance id (a pods file says anything): that container is named to the node\'s engine, as setup does; the run goes on', () => {
    const t = (key: number, id: string) => ({ node: '10.0.0.3', name: id, key, label: `10.0.0.3,${id.slice(0, 12)}`, engine: 'docker' as const, meta: { id } });
    const sources = sourcesOf([t(0, 'abcdef0123456789ffff'), t(1, 'ZZZZZZZZZZZZZZZZ')], ['procmon']);
    expect(sources.map((s) => s.id)).toEqual(['abcdef0123456789ffff', undefined]);
    const script = eventsScript(cfg, sources, { follow: false });
    expect(script).toContain("\nsp_ev_id 0 execsnoop abcdef012345 abcdef0123456789ffff '-' /etc/sneakpeek/execsnoop\n");
    expect(script).toContain("\nsp_ev_name 1 execsnoop docker ZZZZZZZZZZZZZZZZ '-' /etc/sneakpeek/execsnoop\n");
  });

  it('a bad id or log dir never reaches the node', () => {
    expect(() => sourceStep(cfg, { key: 0, tool: 'execsnoop', engine: 'docker', name: 'x', id: 'not-hex', resume: '-' })).toThrow(/instance id/);
    expect(() => readStep({ ...cfg, log: { target: 'file', dir: 'rel/dir' } }, { follow: false })).toThrow(/log\.dir/);
  });
});

/** A log: lines with their POS (1-based line number: resume just after line i). */
type Log = { pos: string; line: string }[];
const logOf = (lines: string[]): Log => lines.map((line, i) => ({ pos: String(i + 1), line }));
const from = (log: Log, resume: string) => (resume === '-' ? log : log.slice(Number(resume)));

/** Read a whole log in one session. */
function readAll(type: EventType, log: Log): MonitorEvent[] {
  const r = new SourceReader(type);
  return [...log.flatMap((l) => r.line(l.pos, '', l.line)), ...r.end()];
}

/** Read a log in sessions cut after the given numbers of lines, each resuming where the reader says. */
function readCut(type: EventType, log: Log, cuts: number[]): MonitorEvent[] {
  const r = new SourceReader(type);
  const out: MonitorEvent[] = [];
  for (const cut of cuts) {
    r.reconnect();
    const rest = from(log, r.resume);
    for (const l of rest.slice(0, cut)) out.push(...r.line(l.pos, '', l.line));
  }
  r.reconnect();
  for (const l of from(log, r.resume)) out.push(...r.line(l.pos, '', l.line));
  out.push(...r.end());
  return out;
}

const key = (e: MonitorEvent) => JSON.stringify(e);
const sortedKeys = (evs: MonitorEvent[]) => evs.map(key).sort();

/** execsnoop.bt's lines with two execs' lines interleaved (another CPU's exec in between). */
function interleaved(): string[] {
  const lines = fixture('execsnoop-bt.txt');
  const byKey = new Map<string, string[]>();
  const order: string[] = [];
  const head: string[] = [];
  for (const l of lines) {
    const m = /^(\S+\t\d+)\t/.exec(l);
    if (!m) {
      head.push(l);
      continue;
    }
    if (!byKey.has(m[1]!)) {
      byKey.set(m[1]!, []);
      order.push(m[1]!);
    }
    byKey.get(m[1]!)!.push(l);
  }
  // merge execs pairwise, alternating their lines
  const out = [...head];
  for (let i = 0; i < order.length; i += 2) {
    const a = byKey.get(order[i]!)!;
    const b = i + 1 < order.length ? byKey.get(order[i + 1]!)! : [];
    for (let j = 0; j < Math.max(a.length, b.length); j++) {
      if (j < a.length) out.push(a[j]!);
      if (j < b.length) out.push(b[j]!);
    }
  }
  return out;
}

describe('SourceReader: cut anywhere, resumed, every event exactly once', () => {
  const cases: [string, EventType, string[]][] = [
    ['execsnoop.bt', 'procmon', fixture('execsnoop-bt.txt')],
    ['execsnoop.bt, execs interleaved', 'procmon', interleaved()],
    ['execsnoop.bt, argc 0', 'procmon', fixture('execsnoop-bt-argc0.txt')],
    ['tcptracer.bt', 'tcptracer', fixture('tcptracer-bt.txt')],
    ['fswatch', 'fswatch', fixture('fswatch.txt')],
  ];

  it.each(cases)('%s: one cut at every line', (_n, type, lines) => {
    const log = logOf(lines);
    const whole = readAll(type, log);
    expect(whole.length).toBeGreaterThan(1);
    for (let cut = 0; cut <= log.length; cut++) {
      const got = readCut(type, log, [cut]);
      if (got.length !== whole.length) expect({ cut, got: sortedKeys(got) }).toEqual({ cut, got: sortedKeys(whole) });
      expect(sortedKeys(got)).toEqual(sortedKeys(whole));
    }
  });

  it.each(cases)('%s: three cuts, of every size up to 6 lines', (_n, type, lines) => {
    const log = logOf(lines);
    const whole = sortedKeys(readAll(type, log));
    for (let a = 0; a <= 6; a++) for (let b = 0; b <= 6; b++) for (let c = 0; c <= 6; c++) expect(sortedKeys(readCut(type, log, [a, b, c]))).toEqual(whole);
  });

  it('interleaved execs: a cut between them resumes before the unfinished one, and the finished one is not printed again', () => {
    const log = logOf(interleaved());
    const r = new SourceReader('procmon');
    // find a cut where one exec is out and an older one is still waiting
    for (let i = 0; i < log.length; i++) {
      r.line(log[i]!.pos, '', log[i]!.line);
      if (r.resume !== log[i]!.pos) {
        expect(Number(r.resume)).toBeLessThan(i + 1);
        return;
      }
    }
    throw new Error('no cut with an unfinished exec');
  });

  it('an event with no time of its own takes the journal\'s (BCC)', () => {
    const r = new SourceReader('procmon');
    r.line('c1', '1764590400000000', 'TIME     UID   PCOMM            PID     PPID    RET ARGS');
    const [ev] = r.line('c2', '1764590400123456', '15:38:05 0     ls               21845   21842     0 /bin/ls -l');
    expect(ev).toMatchObject({ time: '2025-12-01T12:00:00.123456Z', clock: '15:38:05', filename: '/bin/ls', args: ['/bin/ls', '-l'], upperLayer: null });
    expect(r.resume).toBe('c2');
  });

  it('BCC tcptracer: closes are not shown (connects and accepts are)', () => {
    const r = new SourceReader('tcptracer');
    expect(r.line('1', '', 'X  2928   telnet           4  192.168.1.2      192.168.1.1      41316  23')).toEqual([]);
    expect(r.line('2', '', 'C  2928   telnet           4  192.168.1.2      192.168.1.1      41316  23')).toMatchObject([{ kind: 'connect', comm: 'telnet' }]);
  });

  it('fswatch: container paths from the UpperDir in the env file, or the log\'s first line; unknown → null', () => {
    const line = '2026-12-01T15:37:10Z /var/lib/docker/overlay2/x/diff/etc/motd Updated';
    const a = new SourceReader('fswatch');
    expect(a.line('1', '', line)).toMatchObject([{ path: null, hostPath: '/var/lib/docker/overlay2/x/diff/etc/motd' }]);
    a.env('# managed by sneakpeek\nSNEAKPEEK_CONTAINER=abc\nSNEAKPEEK_WATCH_DIR=/var/lib/docker/overlay2/x/diff\nSNEAKPEEK_IMAGE_DIRS=\n');
    expect(a.line('2', '', line)).toMatchObject([{ path: '/etc/motd' }]);
    const b = new SourceReader('fswatch');
    b.line('1', '', 'sneakpeek fswatch: container abc UpperDir /var/lib/docker/overlay2/x/diff');
    expect(b.line('2', '', line)).toMatchObject([{ path: '/etc/motd', flags: ['Updated'] }]);
  });

  it('bytes that are not UTF-8 come through (latin1 in, surrogate-escaped text out)', () => {
    const r = new SourceReader('fswatch');
    r.env('SNEAKPEEK_WATCH_DIR=/u');
    const [ev] = r.line('1', '', '2026-12-01T15:37:10Z /u/caf\xe9 \xc3\xa9t\xc3\xa9 Created');
    expect(ev).toMatchObject({ path: '/caf\udce9 été' });
  });

  it('envValues', () => {
    expect(envValues('# x=y\nA=1\nB_2=two words\nbad line\n')).toEqual({ A: '1', B_2: 'two words' });
  });
});
