// What the monitor units print, read back as typed events (`sneakpeek --events`). Pure (no
// I/O): one output line in, one event (or undefined: banners, headers, blank lines, noise) out;
// execsnoop.bt's events span lines, which ExecAssembler joins (one per unit's stream).
//
// Sources and their formats:
//   bcc execsnoop    BCC's tools/execsnoop.py, run with BCC_FLAGS (-T -U -x): fixed-width
//                    columns; the header names them, so other flag sets parse too
//   bcc tcptracer    BCC's tools/tcptracer.py -t
//   bpftrace exec    tracers/execsnoop.bt: an exec line, then one arg line per argument —
//                    several lines per event, joined by ExecAssembler
//   bpftrace tcp     tracers/tcptracer.bt: one line per event
//   fswatch          fswatch@.service with the config's flags (lib/fswatch-unit.ts parseFswatchLine)
//
// Texts: the bpftrace programs print every byte exactly (\xNN escapes). A byte sequence that is
// not UTF-8 becomes a string by surrogateescape (PEP 383: byte b >= 0x80 that is not part of a
// UTF-8 sequence is U+DC00 + b), so `textBytes()` gives the exact bytes back and valid UTF-8
// reads as itself. BCC prints texts raw and joins arguments with spaces: its `args` are the
// ARGS column split at spaces, which is what BCC can tell, no more.
import { BCC_FLAGS } from './tracers.ts';
import { parseFswatchLine } from './fswatch-unit.ts';

/** An exec (`-t procmon`). */
export interface ProcmonEvent {
  type: 'procmon';
  /** RFC 3339 with microseconds (bpftrace); null when the source prints no date (BCC). */
  time: string | null;
  /** The time column as the source printed it when it is not a date (BCC -T: HH:MM:SS, local). */
  clock?: string;
  pid: number;
  /** null: BCC printed "?" (the parent had already exited). */
  ppid: number | null;
  /** null: the source has no UID column (BCC without -U). */
  uid: number | null;
  /** The new program's name; the caller's when the exec failed (ret < 0). */
  comm: string;
  /** 0, or -errno. */
  ret: number;
  /** The path given to execve (BCC: the first word of ARGS, where BCC prints it). */
  filename: string;
  /** argv (bpftrace: exact, the first 12; BCC: ARGS split at spaces, args[0] is the filename). */
  args: string[];
  /** The exe is in the container's overlay upper layer (written or changed in the container); null: not known (BCC, failed exec). */
  upperLayer: boolean | null;
  /** bpftrace: where the exe lives: lower (image) | upper (created in the container) | copyup (image file changed in the container) | other (not overlay). */
  layer?: ExecLayer;
  /** bpftrace: the number of arguments (args holds the first 12). */
  argc?: number;
  /** Present when something was cut: the filename at 64 bytes, args (indexes) at 64 bytes, or arguments past the 12th or lost. */
  truncated?: { filename?: true; args?: number[]; moreArgs?: true };
}

/** A TCP connect or accept (`-t tcptracer`); BCC also reports closes. */
export interface TcpEvent {
  type: 'tcptracer';
  time: string | null;
  /** BCC -t: seconds since tcptracer's first event. */
  clock?: string;
  kind: 'connect' | 'accept' | 'close';
  ip: 4 | 6;
  saddr: string;
  sport: number;
  daddr: string;
  dport: number;
  pid: number;
  comm: string;
}

/** A change in the container's upper layer (`-t fswatch`). */
export interface FswatchEvent {
  type: 'fswatch';
  /** As fswatch printed it (the default config: RFC 3339, UTC, whole seconds). */
  time: string | null;
  /** The container path (hostPath minus UpperDir); null when hostPath is not under UpperDir. */
  path: string | null;
  hostPath: string;
  flags: string[];
}

export type MonitorEvent = ProcmonEvent | TcpEvent | FswatchEvent;
export type ExecLayer = 'lower' | 'upper' | 'copyup' | 'other';

// ---------------------------------------------------------------------------------------------
// Bytes and text

/** Bytes as a string: UTF-8 where it is valid, every other byte b as U+DC00+b (surrogateescape). */
export function bytesText(b: Uint8Array): string {
  let out = '';
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    const n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    let ok = n > 0 && i + n <= b.length;
    for (let k = 1; ok && k < n; k++) ok = (b[i + k]! & 0xc0) === 0x80;
    if (ok && n === 3) {
      const c1 = b[i + 1]!;
      ok = !(c === 0xe0 && c1 < 0xa0) && !(c === 0xed && c1 >= 0xa0); // overlong; surrogates
    }
    if (ok && n === 4) {
      const c1 = b[i + 1]!;
      ok = !(c === 0xf0 && c1 < 0x90) && !(c === 0xf4 && c1 >= 0x90); // overlong; > U+10FFFF
    }
    if (ok) {
      out += Buffer.from(b.subarray(i, i + n)).toString('utf8');
      i += n;
    } else {
      out += String.fromCharCode(0xdc00 + c);
      i += 1;
    }
  }
  return out;
}

/** The exact bytes of a string from bytesText (UTF-8, escaped bytes back as themselves). */
export function textBytes(s: string): Buffer {
  const parts: Buffer[] = [];
  let run = '';
  for (let i = 0; i < s.length; i++) {
    const u = s.charCodeAt(i);
    const lone = u >= 0xdc80 && u <= 0xdcff && !(i > 0 && s.charCodeAt(i - 1) >= 0xd800 && s.charCodeAt(i - 1) <= 0xdbff);
    if (lone) {
      if (run) parts.push(Buffer.from(run, 'utf8'));
      run = '';
      parts.push(Buffer.from([u - 0xdc00]));
    } else {
      run += s[i];
    }
  }
  if (run) parts.push(Buffer.from(run, 'utf8'));
  return Buffer.concat(parts);
}

/**
 * A text field of the bpftrace programs (%r / %rx output): \xNN is byte NN, any other character
 * 0x20..0x7e is itself. undefined when it cannot be such output (a lone backslash, a raw TAB).
 */
export function decodeBtText(field: string): string | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < field.length; i++) {
    const c = field.charCodeAt(i);
    if (c === 0x5c) {
      const hex = field.slice(i + 2, i + 4);
      if (field[i + 1] !== 'x' || !/^[0-9a-f]{2}$/.test(hex)) return undefined;
      bytes.push(parseInt(hex, 16));
      i += 3;
    } else if (c >= 0x20 && c <= 0x7e) {
      bytes.push(c);
    } else {
      return undefined;
    }
  }
  return bytesText(Uint8Array.from(bytes));
}

/** bpftrace's strftime("%Y-%m-%dT%H:%M:%S.%f%z") → RFC 3339 (the offset gets its colon). */
export function btTime(s: string): string | undefined {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6})([+-]\d\d)(\d\d)$/.exec(s);
  return m ? `${m[1]}${m[2]}:${m[3]}` : undefined;
}

const int = (s: string | undefined): number | undefined => (s !== undefined && /^-?\d+$/.test(s) ? Number(s) : undefined);

// ---------------------------------------------------------------------------------------------
// bpftrace: tracers/execsnoop.bt

export const EXEC_LAYERS: readonly ExecLayer[] = ['lower', 'upper', 'copyup', 'other'];
/** Arguments execsnoop.bt prints (its unroll count). */
export const BT_EXEC_MAX_ARGS = 12;

/** The exec line of tracers/execsnoop.bt (arguments follow on their own lines). */
export interface BtExecHead {
  line: 'exec';
  key: string;
  event: ProcmonEvent;
  /** Arg lines that belong to it. */
  expect: number;
}

/** One arg line of tracers/execsnoop.bt. */
export interface BtExecArg {
  line: 'arg';
  key: string;
  index: number;
  cut: boolean;
  value: string;
}

/** One line of tracers/execsnoop.bt: an exec line, an arg line, or undefined (banner, header, blank). */
export function parseBtExecLine(line: string): BtExecHead | BtExecArg | undefined {
  const f = line.split('\t');
  const time = btTime(f[0] ?? '');
  const pid = int(f[1]);
  if (!time || pid === undefined) return undefined;
  const key = `${f[0]}\t${f[1]}`;
  if (f[2] === 'arg') {
    const index = int(f[3]);
    const cut = f[4];
    const value = f.length === 6 ? decodeBtText(f[5]!) : undefined;
    if (index === undefined || index < 0 || (cut !== '0' && cut !== '1') || value === undefined) return undefined;
    return { line: 'arg', key, index, cut: cut === '1', value };
  }
  if (f.length !== 10) return undefined;
  const [ppid, uid, ret, argc, cut] = [int(f[2]), int(f[3]), int(f[4]), int(f[5]), int(f[6])];
  const layer = f[7]!;
  const comm = decodeBtText(f[8]!);
  const filename = decodeBtText(f[9]!);
  if (ppid === undefined || uid === undefined || ret === undefined || argc === undefined || argc < 0 || cut === undefined) return undefined;
  if (comm === undefined || filename === undefined || !(layer === '-' || (EXEC_LAYERS as readonly string[]).includes(layer))) return undefined;
  const event: ProcmonEvent = {
    type: 'procmon',
    time,
    pid,
    ppid,
    uid,
    comm,
    ret,
    filename,
    args: [],
    upperLayer: layer === '-' ? null : layer === 'upper' || layer === 'copyup',
    argc,
  };
  if (layer !== '-') event.layer = layer as ExecLayer;
  if (cut & 1) event.truncated = { filename: true };
  if (cut & 2) event.truncated = { ...event.truncated, moreArgs: true };
  return { line: 'exec', key, event, expect: Math.min(argc, BT_EXEC_MAX_ARGS) };
}

/**
 * Joins tracers/execsnoop.bt's lines into events. Feed a unit's lines in order; an event comes
 * out when its last arg line is in. Lines of one exec are printed together, in order, by one
 * BPF program run; another exec's lines may come in between (another CPU), hence the key
 * (TIME and PID). `flush()` gives what is still waiting (lines lost: bpftrace said "Lost N
 * events"), marked truncated; `maxPending` bounds the memory that can take.
 */
export class ExecAssembler {
  private pending = new Map<string, { event: ProcmonEvent; expect: number; got: Map<number, BtExecArg> }>();

  constructor(private readonly maxPending = 1024) {}

  push(line: string): ProcmonEvent[] {
    return this.take(line).map((k) => k.event);
  }

  /** push(), each event with its key (the TIME and PID fields of its lines, as printed). */
  take(line: string): KeyedExec[] {
    const rec = parseBtExecLine(line);
    if (!rec) return [];
    const out: KeyedExec[] = [];
    if (rec.line === 'exec') {
      const stale = this.pending.get(rec.key);
      if (stale) out.push(this.finish(rec.key));
      this.pending.set(rec.key, { event: rec.event, expect: rec.expect, got: new Map() });
      if (this.pending.size > this.maxPending) out.push(this.finish(this.pending.keys().next().value!));
    } else {
      const p = this.pending.get(rec.key);
      if (!p || rec.index >= p.expect) return out; // its exec line was lost, or not ours
      p.got.set(rec.index, rec);
    }
    const p = this.pending.get(rec.key);
    if (p && p.got.size >= p.expect) out.push(this.finish(rec.key));
    return out;
  }

  /** Events still waiting for lines, oldest first, with what is missing marked. */
  flush(): ProcmonEvent[] {
    return this.flushKeyed().map((k) => k.event);
  }

  flushKeyed(): KeyedExec[] {
    return [...this.pending.keys()].map((k) => this.finish(k));
  }

  private finish(key: string): KeyedExec {
    const p = this.pending.get(key)!;
    this.pending.delete(key);
    const ev = p.event;
    const cut: number[] = [];
    for (let i = 0; i < p.expect; i++) {
      const a = p.got.get(i);
      if (!a) break;
      ev.args.push(a.value);
      if (a.cut) cut.push(i);
    }
    if (cut.length) ev.truncated = { ...ev.truncated, args: cut };
    if (ev.args.length < p.expect) ev.truncated = { ...ev.truncated, moreArgs: true };
    return { key, event: ev };
  }
}

/** An exec event and the key its lines share. */
export interface KeyedExec {
  key: string;
  event: ProcmonEvent;
}

// ---------------------------------------------------------------------------------------------
// bpftrace: tracers/tcptracer.bt

const KINDS = { connect: 'connect', accept: 'accept' } as const;

/** One line of tracers/tcptracer.bt, or undefined (banner, header, blank). */
export function parseBtTcpLine(line: string): TcpEvent | undefined {
  const f = line.split('\t');
  if (f.length !== 9) return undefined;
  const time = btTime(f[0]!);
  const kind = KINDS[f[1] as keyof typeof KINDS];
  const ip = f[2] === '4' ? 4 : f[2] === '6' ? 6 : undefined;
  const [sport, dport, pid] = [int(f[4]), int(f[6]), int(f[7])];
  const comm = decodeBtText(f[8]!);
  if (!time || !kind || !ip || sport === undefined || dport === undefined || pid === undefined || comm === undefined) return undefined;
  if (!isAddr(f[3]!, ip) || !isAddr(f[5]!, ip)) return undefined;
  return { type: 'tcptracer', time, kind, ip, saddr: f[3]!, sport, daddr: f[5]!, dport, pid, comm };
}

function isAddr(a: string, ip: 4 | 6): boolean {
  return ip === 4 ? /^\d{1,3}(\.\d{1,3}){3}$/.test(a) : /^[0-9a-f:.]+$/i.test(a) && a.includes(':');
}

// ---------------------------------------------------------------------------------------------
// BCC: tools/execsnoop.py (-T -U -x, and other flag sets by their header)

/** The columns a BCC execsnoop header names, in order (ARGS last). */
export type BccExecColumn = 'TIME' | 'TIME(s)' | 'UID' | 'COMM' | 'PID' | 'PPID' | 'RET' | 'ARGS';
const BCC_EXEC_COLUMNS: readonly BccExecColumn[] = ['TIME', 'TIME(s)', 'UID', 'COMM', 'PID', 'PPID', 'RET', 'ARGS'];

/** The columns of the header BCC execsnoop prints with `flags` (the header printf of execsnoop.py). */
export function bccExecColumnsOf(flags: readonly string[]): BccExecColumn[] {
  const on = (f: string) => flags.some((x) => x === f || (/^-[A-Za-z]+$/.test(x) && x.includes(f.slice(1))));
  return [...(on('-T') ? ['TIME' as const] : []), ...(on('-t') ? ['TIME(s)' as const] : []), ...(on('-U') ? ['UID' as const] : []), 'COMM', 'PID', 'PPID', 'RET', 'ARGS'];
}

/** What sneakpeek's execsnoop@ units print (BCC_FLAGS): used when the header is not in sight. */
export const BCC_EXEC_DEFAULT: readonly BccExecColumn[] = bccExecColumnsOf(BCC_FLAGS.execsnoop);

/** The columns of a BCC execsnoop header line (PCOMM in BCC <= 0.26, COMM since), or undefined. */
export function bccExecHeader(line: string): BccExecColumn[] | undefined {
  const words = line.trim().split(/\s+/).map((w) => (w === 'PCOMM' ? 'COMM' : w));
  if (words.at(-1) !== 'ARGS' || !words.includes('COMM')) return undefined;
  return words.every((w) => (BCC_EXEC_COLUMNS as readonly string[]).includes(w)) ? (words as BccExecColumn[]) : undefined;
}

/** One line of BCC execsnoop's output with these columns (from its header), or undefined. */
export function parseBccExecLine(line: string, columns: readonly BccExecColumn[] = BCC_EXEC_DEFAULT): ProcmonEvent | undefined {
  let rest = line;
  let clock: string | undefined;
  let uid: number | null = null;
  // Left of COMM: each column's value and the padding after it.
  for (const col of columns.slice(0, columns.indexOf('COMM'))) {
    const re = col === 'TIME' ? /^(\d\d:\d\d:\d\d) +/ : col === 'TIME(s)' ? /^(\d+\.\d{3}) */ : /^(\d+) */;
    const m = re.exec(rest);
    if (!m) return undefined;
    if (col === 'TIME') clock = m[1];
    else if (col === 'TIME(s)') clock ??= m[1];
    else uid = Number(m[1]);
    rest = rest.slice(m[0].length);
  }
  // COMM is %-16s: 16 characters when ASCII; else up to the first place the numbers fit.
  const after = columns.slice(columns.indexOf('COMM') + 1, -1);
  const tail = ` +${after.map((c) => (c === 'PPID' ? '(\\d+|\\?)' : c === 'RET' ? '(-?\\d+)' : '(\\d+)')).join(' +')} (.*)$`;
  // (`s`: raw texts may hold CR, U+2028 or U+2029, which `.` alone does not match)
  const m = new RegExp(`^(.{16})${tail}`, 's').exec(rest) ?? new RegExp(`^(.*?)${tail}`, 's').exec(rest);
  if (!m) return undefined;
  const comm = m[1]!;
  const val = (c: BccExecColumn) => m[after.indexOf(c) + 2];
  const args = m[after.length + 2]!;
  const words = args === '' ? [] : args.split(' ');
  const more = words.at(-1) === '...'; // BCC's marker for arguments past --max-args
  if (more) words.pop();
  const ppid = after.includes('PPID') ? val('PPID') : '?';
  const ev: ProcmonEvent = {
    type: 'procmon',
    time: null,
    pid: Number(val('PID')),
    ppid: ppid === '?' || ppid === undefined ? null : Number(ppid),
    uid,
    comm: comm.trimEnd(),
    ret: Number(val('RET')),
    filename: words[0] ?? '',
    args: words,
    upperLayer: null,
  };
  if (clock !== undefined) ev.clock = clock;
  if (more) ev.truncated = { moreArgs: true };
  return ev;
}

// ---------------------------------------------------------------------------------------------
// BCC: tools/tcptracer.py (-t, or without)

const BCC_KINDS = { C: 'connect', A: 'accept', X: 'close' } as const;

/**
 * One line of BCC tcptracer's output, or undefined. Parsed from the right: the five columns
 * after COMM hold no spaces, so COMM is what lies between PID and them. IPv6 addresses lose
 * BCC's brackets. U (unknown) lines are not events.
 */
export function parseBccTcpLine(line: string): TcpEvent | undefined {
  const m = /^(?:(\d+\.\d+) +)?([CAX]) +(\d+) +(.*?) +([46]) +(\S+) +(\S+) +(\d+) +(\d+) *$/s.exec(line);
  if (!m) return undefined;
  const ip = m[5] === '4' ? 4 : 6;
  const addr = (a: string) => (ip === 6 ? a.replace(/^\[(.*)\]$/, '$1') : a);
  const [saddr, daddr] = [addr(m[6]!), addr(m[7]!)];
  if (!isAddr(saddr, ip) || !isAddr(daddr, ip)) return undefined;
  const ev: TcpEvent = {
    type: 'tcptracer',
    time: null,
    kind: BCC_KINDS[m[2] as keyof typeof BCC_KINDS],
    ip,
    saddr,
    sport: Number(m[8]),
    daddr,
    dport: Number(m[9]),
    pid: Number(m[3]),
    comm: m[4]!,
  };
  if (m[1] !== undefined) ev.clock = m[1];
  return ev;
}

// ---------------------------------------------------------------------------------------------
// fswatch

/** One line of an fswatch@ unit, or undefined; `upperDir` comes from the log's first line (upperDirOfHeader). */
export function parseFswatchEvent(line: string, upperDir: string): FswatchEvent | undefined {
  const e = parseFswatchLine(line, upperDir);
  if (!e) return undefined;
  const time = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(e.time) ? e.time : null;
  return { type: 'fswatch', time, path: e.path ?? null, hostPath: e.hostPath, flags: e.flags };
}
