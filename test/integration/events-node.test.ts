// scripts/sneakpeek/events.sh — what `sneakpeek --events` runs on a node — against the real thing:
// a private systemd with its own journald (test/helpers/systemd.ts { journal: true }), units
// rendered by lib/units.ts (so with the LogExtraFields= lines the follower matches) that log
// numbered lines to the journal or to files, the node script built as the tool builds it and
// run under dash with the machine's awk (mawk) and with busybox awk. Proves: every byte of a line
// through both targets; --since; a follower picks up an instance started after it began; a
// reader killed mid-stream and started again from the POS it last sent yields every number
// exactly once (journal and files); the watchdog ends a follower whose session is gone.
// (Ported from the journal-prep groundwork's prototype tests.)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, type Config } from '../../lib/config.ts';
import { readStep, sourceStep, type EventTool } from '../../lib/event-reader.ts';
import { renderEnvFile, renderTemplate, type UnitSpec } from '../../lib/units.ts';
import { parseRecord, RecordSplitter, type NodeRecord, type RecordOf } from '../../lib/wire.ts';
import { nodeScript } from '../../lib/io/node-files.ts';
import { ROOT } from '../helpers/cli.ts';
import { exactlyOnce } from '../helpers/procs.ts';
import { commandWorks, isRoot, missing } from '../helpers/prereq.ts';
import { journaldAvailable, startPrivateSystemd, systemdAvailable, type PrivateSystemd } from '../helpers/systemd.ts';

const skip = missing({
  root: isRoot,
  'systemd, systemd-analyze, nsenter, unshare': systemdAvailable,
  'systemd-journald, journalctl': journaldAvailable,
  dash: () => commandWorks('dash', ['-c', ':']),
  'busybox (apt-get install busybox-static)': () => commandWorks('busybox', ['true']),
});

const tmp = mkdtempSync(path.join(os.tmpdir(), 'sp-events-node-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let sd: PrivateSystemd;
let cfgJ: Config;
let cfgF: Config;
const logDir = () => path.join(sd.dir, 'log');

// Two awk implementations the nodes may have: Debian's mawk (the default `awk` here) and busybox.
const AWKS: Record<string, string> = { mawk: 'mawk', busybox: 'busybox awk' };
const awkDir = (name: string) => path.join(tmp, `awk-${name}`);

type Ev = RecordOf<'EV'> & { msg: Buffer };
/** A source: KEY TOOL ID RESUME. */
type Src = [number, EventTool, string, string];

/** The node script for these sources, as the tool builds it. */
function script(cfg: Config, sources: Src[], o: { follow?: boolean; since?: string; poll?: string } = {}): string {
  const steps = sources.map(([key, tool, id, resume]) => sourceStep(cfg, { key, tool, engine: 'docker', name: id, id, resume }));
  let read = readStep(cfg, { follow: o.follow ?? false, since: o.since ? { node: o.since, cutoffMs: 0 } : undefined });
  if (o.poll) read = read.replace(/^sp_events /, `sp_events -i ${o.poll} `);
  return nodeScript(cfg, ['get_container_ns', 'sneakpeek/events'], [...steps, read]);
}

const envFor = (awk: string) => ({ ...process.env, PATH: `${awkDir(awk)}:${sd.binDir}:${process.env.PATH ?? '/usr/bin:/bin'}`, TMPDIR: tmp });

function records(buf: Buffer): NodeRecord[] {
  const out: NodeRecord[] = [];
  new RecordSplitter().push(buf, (r) => {
    const x = parseRecord(r);
    if (x) out.push(x);
  });
  return out;
}
const evsOf = (recs: NodeRecord[], key?: string): Ev[] =>
  recs.filter((r): r is RecordOf<'EV'> => r.tag === 'EV' && (key === undefined || r.key === key)).map((r) => ({ ...r, msg: Buffer.from(r.message, 'latin1') }));

/** Run a read to its end (no follow) under `timeout 60 dash -s`, as the runner would. */
function readOnce(cfg: Config, sources: Src[], o: { since?: string } = {}, awk = 'mawk'): { code: number; recs: NodeRecord[]; evs: Ev[]; stderr: string } {
  const r = spawnSync('timeout', ['-k', '5', '60', 'dash', '-s'], { input: script(cfg, sources, o), env: envFor(awk), maxBuffer: 256 << 20 });
  const recs = records(r.stdout);
  return { code: r.status ?? -1, recs, evs: evsOf(recs), stderr: r.stderr.toString().replace(/^\n+/gm, '') };
}

interface Reader {
  child: ChildProcess;
  recs: NodeRecord[];
  exit: Promise<number | null>;
  /** SIGKILL the reader's whole process group. */
  kill(): void;
  evs(key?: string): Ev[];
  alive(): boolean;
}

/** A process of group `pgid` is alive (zombies aside: journalctl, orphaned by the shim's nsenter, may be reaped late). */
function groupAlive(pgid: number): boolean {
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const st = readFileSync(`/proc/${e}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      if (Number(f[2]) === pgid && f[0] !== 'Z') return true;
    } catch {
      /* gone */
    }
  }
  return false;
}

/** Start a follower as the runner does (`timeout -k 5 0 dash -s`: its own process group, no deadline). */
function startReader(cfg: Config, sources: Src[], o: { since?: string; poll?: string; awk?: string } = {}): Reader {
  const child = spawn('timeout', ['-k', '5', '0', 'dash', '-s'], { detached: true, stdio: ['pipe', 'pipe', 'pipe'], env: envFor(o.awk ?? 'mawk') });
  child.stdin!.end(script(cfg, sources, { ...o, follow: true }));
  const recs: NodeRecord[] = [];
  const splitter = new RecordSplitter();
  child.stdout!.on('data', (b: Buffer) =>
    splitter.push(b, (r) => {
      const x = parseRecord(r);
      if (x) recs.push(x);
    }),
  );
  child.stderr!.on('data', () => {});
  const exit = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
  const pgid = child.pid!;
  return {
    child,
    recs,
    exit,
    alive: () => groupAlive(pgid),
    kill: () => {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        /* the group is gone */
      }
    },
    evs: (key?: string) => evsOf(recs, key),
  };
}

async function until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; !ok(); await sleep(50)) if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
}

const num = (e: Ev) => Number(/^n=(\d+)/.exec(e.msg.toString('latin1'))?.[1] ?? NaN);


/** The journal's own view of one unit. */
function journalEntries(unit: string): { MESSAGE: unknown; __CURSOR: string; __REALTIME_TIMESTAMP: string; SNEAKPEEK_ID?: string }[] {
  const r = sd.journalctl('-o', 'json', '--all', '--output-fields=MESSAGE,SNEAKPEEK_ID', `_SYSTEMD_UNIT=${unit}`);
  return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}
const journalMax = (unit: string) => Math.max(0, ...journalEntries(unit).map((e) => Number(/^n=(\d+)/.exec(String(e.MESSAGE))?.[1] ?? 0)));
async function settledMax(unit: string): Promise<number> {
  for (let prev = -1; ; ) {
    const cur = journalMax(unit);
    if (cur === prev) return cur;
    prev = cur;
    await sleep(300);
  }
}

// The units: the real template shape (lib/units.ts renderTemplate). execsnoop@ (journal) logs
// numbered lines every ~5 ms (MODE count, LIMIT 0: until stopped), or awkward bytes (MODE
// special); tcptracer@ (log files) numbered lines with awkward bytes.
const UNIT_SH = `case $1 in
special)
  printf 'plain ascii\\n'
  printf 'tab\\there "quote" back\\\\slash\\n'
  printf 'utf8 caf\\303\\251 \\342\\202\\254\\n'
  printf 'latin1 caf\\351 bad\\n'
  printf 'esc \\033[1m cr\\rdel \\177\\n'
  printf 'nul\\000after\\n'
  head -c 5000 /dev/zero | tr '\\000' L; echo
  head -c 70000 /dev/zero | tr '\\000' M; echo
  printf 'no newline at the end' ;; # (journald keeps it when the stream closes)
count)
  i=0; while [ "$2" = 0 ] || [ "$i" -lt "$2" ]; do i=$((i+1)); echo "n=$i"; sleep 0.005; done; exec sleep infinity ;;
gen)
  i=0; pad=$(head -c 100000 /dev/zero | tr '\\000' x)
  while [ "$2" = 0 ] || [ "$i" -lt "$2" ]; do
    i=$((i+1)); p=; z=
    [ $((i % 50)) -eq 0 ] && p=$pad
    [ $((i % 7)) -eq 0 ] && z='\\000z'
    printf "n=%d\\tcaf\\351 \\377\\r|%s$z\\n" "$i" "$p"
    sleep 0.005
  done
  exec sleep infinity ;;
esac
`;
function genLine(i: number, nul = '\x01'): Buffer {
  return Buffer.from(`n=${i}\tcaf\xe9 \xff\r|${i % 50 === 0 ? 'x'.repeat(100_000) : ''}${i % 7 === 0 ? `${nul}z` : ''}`, 'latin1');
}
const spec = (tool: EventTool): UnitSpec => ({
  tool,
  description: 'sneakpeek test: lines to read back (%i)',
  execStart: ['/bin/sh', path.join(sd.dir, 'unit.sh'), { env: 'SNEAKPEEK_MODE' }, { env: 'SNEAKPEEK_LIMIT' }],
  env: ['SNEAKPEEK_MODE', 'SNEAKPEEK_LIMIT'],
  hardening: [],
});
function instance(tool: EventTool, id: string, mode: string, limit = 0): string {
  const dir = path.join(sd.dir, 'env', tool);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `${id}.env`), renderEnvFile({ SNEAKPEEK_MODE: mode, SNEAKPEEK_LIMIT: String(limit) }));
  return `${tool}@${id}.service`;
}
function start(...units: string[]): void {
  const r = sd.systemctl('start', ...units);
  if (r.status !== 0) throw new Error(`systemctl start ${units.join(' ')}: ${r.stderr}`);
}
const stop = (...units: string[]) => void sd.systemctl('stop', ...units);

beforeAll(async () => {
  if (skip) return;
  for (const [name, cmd] of Object.entries(AWKS)) {
    mkdirSync(awkDir(name), { recursive: true });
    writeFileSync(path.join(awkDir(name), 'awk'), `#!/bin/sh\nexec ${cmd} "$@"\n`, { mode: 0o755 });
  }
  sd = await startPrivateSystemd('events-node', { journal: true });
  mkdirSync(logDir(), { recursive: true });
  writeFileSync(path.join(sd.dir, 'unit.sh'), UNIT_SH);
  const base = `unitDir: ${sd.unitDir}\nenvDir: ${path.join(sd.dir, 'env')}\nsudo: false\n`;
  cfgJ = parseConfig(`${base}log: {target: journal, dir: ${logDir()}}\n`);
  cfgF = parseConfig(`${base}log: {target: file, dir: ${logDir()}}\n`);
  writeFileSync(path.join(sd.unitDir, 'execsnoop@.service'), renderTemplate(cfgJ, spec('execsnoop')));
  writeFileSync(path.join(sd.unitDir, 'tcptracer@.service'), renderTemplate(cfgF, spec('tcptracer')));
  expect(sd.systemctl('daemon-reload').status).toBe(0);
});

afterAll(async () => {
  await sd?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(skip)('events.sh: sources', () => {
  it('EVSRC names each source and its env file as it is now (empty: no instance configured)', () => {
    instance('execsnoop', 'a00000000000', 'count', 1);
    const r = readOnce(cfgJ, [[0, 'execsnoop', 'a00000000000', '-'], [1, 'execsnoop', 'a0000000000f', '-']]);
    expect(r.code).toBe(0);
    const src = r.recs.filter((x): x is RecordOf<'EVSRC'> => x.tag === 'EVSRC');
    expect(src.map((x) => [x.key, x.tool, x.id])).toEqual([['0', 'execsnoop', 'a00000000000'], ['1', 'execsnoop', 'a0000000000f']]);
    expect(src[0]!.env).toMatch(/\nSNEAKPEEK_MODE=count\nSNEAKPEEK_LIMIT=1$/);
    expect(src[1]!.env).toBe('');
    expect(r.recs.at(-1)).toEqual({ tag: 'EVEND', key: '-' });
  });

  it('refuses what it cannot use, naming the source; the others are still read', () => {
    const bad = [
      'sp_ev_id 0 counter a00000000001 a00000000001 - /x',
      'sp_ev_id 1 execsnoop nothex000000 nothex000000 - /x',
      "sp_ev_id 2 execsnoop a00000000002 a00000000002 's=1;i=2'\\'';rm' /x",
      'sp_ev_id 3 execsnoop a00000000003 a00000000003 - /x',
      'sp_ev_id 4 execsnoop a00000000003 a00000000003 - /x',
      'sp_events journal /x',
    ];
    const r = spawnSync('dash', ['-s'], { input: nodeScript(cfgJ, ['get_container_ns', 'sneakpeek/events'], bad), env: envFor('mawk') });
    const recs = records(r.stdout);
    expect(recs.map((x) => [x.tag, x.key])).toEqual([['ERR', '0'], ['ERR', '1'], ['ERR', '2'], ['EVSRC', '3'], ['ERR', '4'], ['EVEND', '-']]);
    for (const [args, want] of [['-s 10m journal /x', /bad since/], ['journald /x', /bad log target/], ['file rel', /absolute log dir/]] as const) {
      const x = records(spawnSync('dash', ['-s'], { input: nodeScript(cfgJ, ['get_container_ns', 'sneakpeek/events'], ['sp_ev_id 0 execsnoop a00000000009 a00000000009 - /x', `sp_events ${args}`]), env: envFor('mawk') }).stdout);
      expect(x.at(-1)).toMatchObject({ tag: 'ERR', key: '-', message: expect.stringMatching(want) });
    }
  });
});

// The journal JSON → EV awk on lines journald 252 does not produce here but may elsewhere (a
// field set twice, \u escapes), run by dash and each awk exactly as the reader runs it.
describe.skipIf(skip)('events.sh: journalctl JSON lines → EV (crafted lines)', () => {
  const unit = 'execsnoop@a00000000001.service';
  const line = (msg: string, cursorI = 1, u = unit) => `{"__CURSOR":"s=x;i=${cursorI};t=1","MESSAGE":${msg},"__REALTIME_TIMESTAMP":"1700000000000001","_SYSTEMD_UNIT":"${u}"}`;
  const u8 = (x: string) => Buffer.from(x, 'utf8');
  const l1 = (x: string) => Buffer.from(x, 'latin1');
  const cases: [string, string, Buffer | null][] = [
    ['a string with escapes', '"tab\\t q\\"x\\" bs\\\\ nl\\n"', u8('tab\t q"x" bs\\ nl\n')],
    ['\\u escapes, a surrogate pair, raw UTF-8', '"\\u00e9\\u20ac\\ud83d\\ude00 caf\u00e9"', u8('\u00e9\u20ac\u{1f600} caf\u00e9')],
    ['a byte array (not UTF-8)', '[108,97,116,233]', l1('lat\xe9')],
    ['a NUL byte becomes \\001', '[97,0,98]', l1('a\x01b')],
    ['a field set twice: the first value', '["first","sec]ond"]', u8('first')],
    ['set twice, as byte arrays', '[[104,105],[106]]', u8('hi')],
    ['null (over 4096 bytes without --all)', 'null', u8('')],
    ['malformed: a string that runs into the next key', '"abc}', null],
    ['an unterminated array', '[1,2', null],
    ['not a byte', '[97,300]', null],
  ];
  const awkText = () => {
    const text = readFileSync(path.join(ROOT, 'scripts/sneakpeek/events.sh'), 'utf8');
    return text.slice(text.indexOf("SP_EV_JOURNAL_AWK='"), text.indexOf("'\n", text.indexOf("SP_EV_JOURNAL_AWK='") + 20) + 2);
  };
  it.each(Object.keys(AWKS).flatMap((awk) => cases.map((c) => [awk, ...c] as const)))('%s: %s', (awk, _name, json, want) => {
    // the second line's unit is not a source: never sent
    const input = `${line(json)}\n${line('"other unit"', 2, 'execsnoop@b00000000001.service')}\n`;
    const r = spawnSync('dash', ['-c', `${awkText()}\nawk -v map="${unit} 1" -v res="1 -" -v since= -v follow=0 "$SP_EV_JOURNAL_AWK"`], {
      input,
      env: { ...envFor(awk), LC_ALL: 'C' },
    });
    expect(r.stderr.toString()).toBe('');
    expect(evsOf(records(r.stdout)).map((e) => [e.key, e.pos, e.usec, e.msg])).toEqual(want === null ? [] : [['1', 's=x;i=1;t=1', '1700000000000001', want]]);
  });
});

describe.skipIf(skip)('which match a follower needs: instances started after it began', () => {
  it('the fields every instance carries (LogExtraFields=) pick up a new instance; a -u glob (resolved once, at start) does not', async () => {
    const old = instance('execsnoop', 'd00000000001', 'count', 2);
    start(old); // so that the glob has something to resolve to at start
    await until('the old instance logged', () => journalMax(old) === 2);
    const id = 'd00000000002';
    // every follower starts after the journal's last entry so far, however late it starts
    const tail = JSON.parse(sd.journalctl('-n', '1', '-o', 'json').stdout).__CURSOR as string;
    const follow = (name: string, ...match: string[]) => {
      const child = spawn(path.join(sd.binDir, 'journalctl'), ['-f', '--no-tail', `--after-cursor=${tail}`, '-o', 'json', '--output-fields=MESSAGE', ...match], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
      return { name, child, lines: () => out.split('\n').filter(Boolean).map((l) => String(JSON.parse(l).MESSAGE)) };
    };
    const fs = [
      follow('SNEAKPEEK_TOOL=execsnoop SNEAKPEEK_ID=ID', 'SNEAKPEEK_TOOL=execsnoop', `SNEAKPEEK_ID=${id}`),
      follow('_SYSTEMD_UNIT=execsnoop@ID.service', `_SYSTEMD_UNIT=execsnoop@${id}.service`),
      follow("-u 'execsnoop@*'", '-u', 'execsnoop@*'),
    ];
    await sleep(1500); // the followers are reading
    start(instance('execsnoop', id, 'count', 20));
    await until('the field followers got all 20', () => fs.slice(0, 2).every((f) => f.lines().length >= 20));
    await sleep(500);
    for (const f of fs) process.kill(-f.child.pid!, 'SIGKILL');
    const want = Array.from({ length: 20 }, (_, i) => `n=${i + 1}`);
    expect(Object.fromEntries(fs.map((f) => [f.name, f.lines()]))).toEqual({
      'SNEAKPEEK_TOOL=execsnoop SNEAKPEEK_ID=ID': want,
      '_SYSTEMD_UNIT=execsnoop@ID.service': want,
      "-u 'execsnoop@*'": [],
    });
    stop(old, `execsnoop@${id}.service`);
  });
});

describe.skipIf(skip)('events.sh: journal', () => {
  it('is valid dash', () => {
    const r = spawnSync('dash', ['-n', path.join(ROOT, 'scripts/sneakpeek/events.sh')], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it.each(Object.keys(AWKS))('sends every byte of every line, with the journal\'s cursor and time (%s)', async (awk) => {
    const id = 'e00000000001';
    const u = instance('execsnoop', id, 'special');
    if (journalEntries(u).length === 0) {
      start(u);
      await until('the special lines', () => journalEntries(u).length === 11);
    }
    const r = readOnce(cfgJ, [[7, 'execsnoop', id, '-']], {}, awk);
    expect(r.code).toBe(0);
    expect(r.recs.at(-1)).toEqual({ tag: 'EVEND', key: '-' });
    expect(r.evs.map((e) => e.key)).toEqual(Array(r.evs.length).fill('7'));
    expect(r.evs.map((e) => e.msg)).toEqual(
      [
        'plain ascii',
        'tab\there "quote" back\\slash',
        'utf8 caf\xc3\xa9 \xe2\x82\xac',
        'latin1 caf\xe9 bad',
        'esc \x1b[1m cr\rdel \x7f',
        // journald splits a stream line at NUL, and at LineMax (48 KiB)
        'nul',
        'after',
        'L'.repeat(5000),
        'M'.repeat(49152),
        'M'.repeat(70000 - 49152),
        'no newline at the end',
      ].map((x) => Buffer.from(x, 'latin1')),
    );
    const mine = journalEntries(u);
    expect(r.evs.map((e) => [e.pos, e.usec])).toEqual(mine.map((e) => [e.__CURSOR, e.__REALTIME_TIMESTAMP]));
    // every entry carries the unit's own fields (LogExtraFields=)
    expect(mine.map((e) => e.SNEAKPEEK_ID)).toEqual(Array(mine.length).fill(id));
  });

  it('--since: @EPOCH and -SECONDS select by entry time; mixed with a RESUME on another source', async () => {
    const [A, B] = ['f00000000001', 'f00000000002'];
    const [u1, u2] = [instance('execsnoop', A, 'count', 400), instance('execsnoop', B, 'count', 400)];
    start(u1, u2);
    await until('400 lines each', () => journalMax(u1) === 400 && journalMax(u2) === 400);
    const all = journalEntries(u1);
    const cutSec = Math.floor(Number(all[0]!.__REALTIME_TIMESTAMP) / 1e6) + 1;
    const want = all.filter((e) => Number(e.__REALTIME_TIMESTAMP) >= cutSec * 1e6).map((e) => e.__CURSOR);
    expect(want.length).toBeGreaterThan(0);
    expect(want.length).toBeLessThan(all.length);
    expect(readOnce(cfgJ, [[1, 'execsnoop', A, '-']], { since: `@${cutSec}` }).evs.map((e) => e.pos)).toEqual(want);
    expect(readOnce(cfgJ, [[1, 'execsnoop', A, '-']], { since: '-3600' }).evs.length).toBe(all.length);
    // a duration longer than the node's clock has run since 1970 (--since 999999999d): everything, not an error
    const far = readOnce(cfgJ, [[1, 'execsnoop', A, '-']], { since: '-86399999913600' });
    expect(far.recs.filter((x) => x.tag === 'ERR')).toEqual([]);
    expect(far.evs.length).toBe(all.length);
    expect(far.recs.find((x) => x.tag === 'EVSINCE')).toMatchObject({ epoch: '0' });
    // B resumes after its 10th entry while A keeps its --since: one journalctl, each source filtered by its own start
    const tenth = journalEntries(u2)[9]!.__CURSOR;
    const r2 = readOnce(cfgJ, [[1, 'execsnoop', A, '-'], [2, 'execsnoop', B, tenth]], { since: `@${cutSec}` });
    expect(r2.evs.filter((e) => e.key === '1').map((e) => e.pos)).toEqual(want);
    expect(r2.evs.filter((e) => e.key === '2').map(num)).toEqual(Array.from({ length: 390 }, (_, i) => i + 11));
    stop(u1, u2);
  });

  it.each(Object.keys(AWKS))('follow, killed mid-stream, resumed from the last cursor: every number exactly once; an instance started after the follower began is picked up (%s)', async (awk) => {
    const [A, B] = awk === 'mawk' ? ['a00000000011', 'b00000000011'] : ['a00000000012', 'b00000000012'];
    const uA = instance('execsnoop', A, 'count');
    const uB = instance('execsnoop', B, 'count');
    start(uA);
    const r1 = startReader(cfgJ, [[1, 'execsnoop', A, '-'], [2, 'execsnoop', B, '-']], { awk });
    await until('reader 1: 200 of A', () => r1.evs('1').length >= 200);
    start(uB); // after the reader began
    await until('reader 1: 100 of B', () => r1.evs('2').length >= 100);
    r1.kill();
    await r1.exit;
    const got1 = r1.evs();
    const last = got1.at(-1)!.pos;
    await sleep(700); // the units go on logging with no reader
    const r2 = startReader(cfgJ, [[1, 'execsnoop', A, last], [2, 'execsnoop', B, last]], { awk });
    await until('reader 2 caught up', () => r2.evs().length > 0);
    await sleep(500);
    stop(uA, uB);
    const [maxA, maxB] = [await settledMax(uA), await settledMax(uB)];
    await until('reader 2 has the last numbers', () => r2.evs('1').some((e) => num(e) === maxA) && r2.evs('2').some((e) => num(e) === maxB));
    await sleep(300);
    r2.kill();
    await r2.exit;
    const nums = (key: string) => [...got1, ...r2.evs()].filter((e) => e.key === key).map(num);
    expect(got1.filter((e) => e.key === '1').length).toBeLessThan(maxA); // killed mid-stream
    expect(exactlyOnce(nums('1'), maxA)).toEqual({ missing: [], doubled: [] });
    expect(exactlyOnce(nums('2'), maxB)).toEqual({ missing: [], doubled: [] });
    // per-source RESUMEs (each source's own last cursor from reader 1), one read to the end
    const lastOf = (key: string) => got1.filter((e) => e.key === key).at(-1)!.pos;
    const r3 = readOnce(cfgJ, [[1, 'execsnoop', A, lastOf('1')], [2, 'execsnoop', B, lastOf('2')]], {}, awk);
    expect(r3.code).toBe(0);
    const nums3 = (key: string) => [...got1.filter((e) => e.key === key), ...r3.evs.filter((e) => e.key === key)].map(num);
    expect(exactlyOnce(nums3('1'), maxA)).toEqual({ missing: [], doubled: [] });
    expect(exactlyOnce(nums3('2'), maxB)).toEqual({ missing: [], doubled: [] });
    // a follow resumed on a quiet journal gets its whole backlog at once (journalctl -f after a
    // cursor without --no-tail prints 10 entries, then waits for the next write to the journal)
    const back = journalEntries(uA).at(-51)!.__CURSOR;
    const r4 = startReader(cfgJ, [[1, 'execsnoop', A, back]], { awk });
    await until('the 50 entries after the cursor', () => r4.evs().length >= 50, 5000).catch(() => undefined);
    await sleep(300);
    r4.kill();
    await r4.exit;
    expect(r4.evs().map(num)).toEqual(Array.from({ length: 50 }, (_, i) => maxA - 49 + i));
  });

  it('a follower whose session is gone ends within seconds, journalctl and all (the watchdog)', async () => {
    const r = startReader(cfgJ, [[1, 'execsnoop', 'a0000000000a', '-']]);
    await sleep(1500);
    expect(r.alive()).toBe(true);
    // the session's end, as the node sees it: its stdout and stderr are gone
    r.child.stdout!.destroy();
    r.child.stderr!.destroy();
    await until('the follower\'s group to end', () => !r.alive(), 5000);
  });
});

describe.skipIf(skip)('events.sh: log files', () => {
  const logOf = (id: string) => path.join(logDir(), `tcptracer-${id}.log`);

  it.each(Object.keys(AWKS))('follow, killed mid-stream, resumed at INODE:OFFSET: every number exactly once, every byte; a file created later is picked up (%s)', async (awk) => {
    const [A, B] = awk === 'mawk' ? ['a10000000001', 'b10000000001'] : ['a10000000002', 'b10000000002'];
    const uA = instance('tcptracer', A, 'gen');
    const uB = instance('tcptracer', B, 'gen');
    start(uA);
    const srcs = (ra: string, rb: string): Src[] => [[1, 'tcptracer', A, ra], [2, 'tcptracer', B, rb]];
    const r1 = startReader(cfgF, srcs('-', '-'), { awk, poll: '0.2' });
    await until('reader 1: 150 of A', () => r1.evs('1').length >= 150);
    start(uB); // its file appears after the reader began
    await until('reader 1: 120 of B', () => r1.evs('2').length >= 120);
    r1.kill();
    await r1.exit;
    const got1 = r1.evs();
    const lastOf = (key: string) => got1.filter((e) => e.key === key).at(-1)!.pos;
    await sleep(700);
    const r2 = startReader(cfgF, srcs(lastOf('1'), lastOf('2')), { awk, poll: '0.2' });
    await until('reader 2 caught up', () => r2.evs().length > 0);
    await sleep(500);
    stop(uA, uB);
    const sizes = [statSync(logOf(A)).size, statSync(logOf(B)).size];
    const ends = (key: string, size: number) => r2.evs(key).some((e) => e.pos.endsWith(`:${size}`));
    await until('reader 2 reached the end of both files', () => ends('1', sizes[0]!) && ends('2', sizes[1]!));
    r2.kill();
    await r2.exit;
    for (const [key, id] of [['1', A], ['2', B]] as const) {
      const evs = [...got1, ...r2.evs()].filter((e) => e.key === key);
      const max = readFileSync(logOf(id), 'latin1').split('\n').filter(Boolean).length;
      expect(got1.filter((e) => e.key === key).length).toBeLessThan(max); // killed mid-stream
      expect(exactlyOnce(evs.map(num), max)).toEqual({ missing: [], doubled: [] });
      // every byte (NUL → \001), and POS = inode:offset just past the line
      const ino = statSync(logOf(id)).ino;
      let off = 0;
      for (const e of [...evs].sort((a, b) => num(a) - num(b))) {
        const want = genLine(num(e));
        off += genLine(num(e), '\0').length + 1;
        if (!e.msg.equals(want) || e.pos !== `${ino}:${off}`) expect({ n: num(e), pos: e.pos, len: e.msg.length }).toEqual({ n: num(e), pos: `${ino}:${off}`, len: want.length });
      }
      expect(off).toBe(statSync(logOf(id)).size);
    }
  });

  it('truncation and replacement: a WARN, then the file is read from its start; a line still being written waits', async () => {
    const id = 'c10000000001';
    const f = logOf(id);
    writeFileSync(f, 'n=1\nn=2\n');
    const ino1 = statSync(f).ino;
    const r = startReader(cfgF, [[1, 'tcptracer', id, '-']], { poll: '0.2' });
    await until('2 lines', () => r.evs().length === 2);
    writeFileSync(f, 'n=3\n'); // truncated (copytruncate) and written again
    await until('n=3', () => r.evs().some((e) => num(e) === 3));
    renameSync(f, `${f}.1`); // rotated by rename: a new file under the name
    writeFileSync(f, 'n=4\nn=5\n');
    await until('n=5', () => r.evs().some((e) => num(e) === 5));
    appendFileSync(f, 'n=6'); // no newline yet: not sent
    await sleep(600);
    expect(r.evs().some((e) => num(e) === 6)).toBe(false);
    appendFileSync(f, '\n');
    await until('n=6', () => r.evs().some((e) => num(e) === 6));
    r.kill();
    await r.exit;
    const ino2 = statSync(f).ino;
    const seq = r.recs
      .filter((x) => x.tag === 'EV' || x.tag === 'WARN')
      .map((x) => (x.tag === 'EV' ? `${x.message}@${x.pos}` : `WARN ${/shrank|replaced/.exec(x.tag === 'WARN' ? x.message : '')?.[0]}`));
    expect(seq).toEqual([`n=1@${ino1}:4`, `n=2@${ino1}:8`, 'WARN shrank', `n=3@${ino1}:4`, 'WARN replaced', `n=4@${ino2}:4`, `n=5@${ino2}:8`, `n=6@${ino2}:12`]);
    // a RESUME whose inode is not the file's: read from 0, with a WARN
    const again = readOnce(cfgF, [[1, 'tcptracer', id, `${ino1}:4`]]);
    expect(again.recs.map((x) => x.tag)).toEqual(['EVSRC', 'WARN', 'EV', 'EV', 'EV', 'EVEND']);
    rmSync(`${f}.1`);
  });

  it('--since skips a file not modified since; reads a newer one whole', () => {
    const [oldId, newId] = ['c20000000001', 'c20000000002'];
    writeFileSync(logOf(oldId), 'n=1\n');
    writeFileSync(logOf(newId), 'n=1\nn=2\n');
    const hourAgo = Date.now() / 1000 - 3600;
    utimesSync(logOf(oldId), hourAgo, hourAgo);
    const r = readOnce(cfgF, [[1, 'tcptracer', oldId, '-'], [2, 'tcptracer', newId, '-']], { since: '-600' });
    expect(r.evs.map((e) => [e.key, num(e)])).toEqual([['2', 1], ['2', 2]]);
    // a duration longer than the node's clock has run since 1970: every file, whole
    const far = readOnce(cfgF, [[1, 'tcptracer', oldId, '-'], [2, 'tcptracer', newId, '-']], { since: '-86399999913600' });
    expect(far.evs.map((e) => [e.key, num(e)])).toEqual([['1', 1], ['2', 1], ['2', 2]]);
  });
});
