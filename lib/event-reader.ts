// `sneakpeek --events`: the node steps that read the monitor units' logs back
// (scripts/sneakpeek/events.sh), --since, and the reading of one unit's log across sessions. Pure.
//
// A SOURCE is one unit instance, <tool>@<ID>.service. Its lines arrive as EV records, each with
// the point to resume just after it (POS: a journal cursor, or INODE:OFFSET in a log file).
// SourceReader turns lines into events (lib/events.ts) and keeps `resume`: where a new session
// must start so that nothing is lost and nothing printed twice. That is the POS of the last line
// whose events are all out — except while an exec is half read (tracers/execsnoop.bt prints one
// exec as several lines, and other execs' lines may come between them): then it is the POS just
// before the oldest unfinished exec's first line. Execs that finished meanwhile are re-read after
// a reconnect; the keys of those already printed are remembered, and they are not printed again.
import type { Config, Engine } from './config.ts';
import { UsageError } from './errors.ts';
import {
  bccExecHeader, bytesText, ExecAssembler, parseBccExecLine, parseBccTcpLine, parseBtExecLine, parseBtTcpLine, parseFswatchEvent,
  type BccExecColumn, type KeyedExec, type MonitorEvent,
} from './events.ts';
import { upperDirOfHeader } from './fswatch-unit.ts';
import { sh } from './quote.ts';
import { checkUnitPath, envDirOf, instanceIdOf, trim } from './units.ts';

/** The -t types whose units --events reads, and the unit (tool) of each. */
export const EVENT_TYPES = ['procmon', 'tcptracer', 'fswatch'] as const;
export type EventType = (typeof EVENT_TYPES)[number];
export const EVENT_TOOL = { procmon: 'execsnoop', tcptracer: 'tcptracer', fswatch: 'fswatch' } as const satisfies Record<EventType, string>;
export type EventTool = (typeof EVENT_TOOL)[EventType];

// ---------------------------------------------------------------------------------------------
// --since

export interface Since {
  /** For the node (sp_events -s): -SECONDS (back from the node's clock) or @EPOCH. */
  node: string;
  /** The same instant on this side's clock, in ms (to filter log-file events on their own time). */
  cutoffMs: number;
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/**
 * `--since`: a duration back from now (`30s`, `10m`, `2h`, `1d`) or a time (ISO 8601:
 * `2026-12-01T15:00:00Z`, `2026-12-01 15:00`, `2026-12-01`; without a zone, this machine's local
 * time). A duration is counted on each node's own clock.
 */
export function parseSince(text: string, nowMs: number): Since {
  const d = /^(\d{1,9})([smhd])$/.exec(text);
  if (d) {
    const secs = Number(d[1]) * UNIT_SECONDS[d[2]!]!;
    return { node: `-${secs}`, cutoffMs: nowMs - secs * 1000 };
  }
  const t = /^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d+))?)?)?(Z|[+-]\d\d:?\d\d)?$/.exec(text);
  if (t) {
    const [, y, mo, da, h = '0', mi = '0', se = '0', frac = '', zone] = t;
    const ms = Number(frac.slice(0, 3).padEnd(3, '0'));
    const parts = [Number(y), Number(mo) - 1, Number(da), Number(h), Number(mi), Number(se), ms] as const;
    let at: number;
    if (zone === undefined) at = new Date(...parts).getTime();
    else {
      at = Date.UTC(...parts);
      if (zone !== 'Z') {
        const z = /^([+-])(\d\d):?(\d\d)$/.exec(zone)!;
        at -= (z[1] === '-' ? -1 : 1) * (Number(z[2]) * 60 + Number(z[3])) * 60_000;
      }
    }
    const check = new Date(Date.UTC(parts[0], parts[1], parts[2]));
    if (Number.isFinite(at) && check.getUTCMonth() === parts[1] && check.getUTCDate() === parts[2] && parts[3] < 24 && parts[4] < 60 && parts[5] < 61)
      return { node: `@${Math.max(0, Math.floor(at / 1000))}`, cutoffMs: at }; // (the node takes no time before 1970)
  }
  throw new UsageError(`--since ${JSON.stringify(text)}: expected a duration (30s, 10m, 2h, 1d) or a time (2026-12-01T15:00:00Z)`);
}

/** An event's time as ms since the epoch (RFC 3339, any number of fraction digits), or undefined. */
export function eventTimeMs(time: string | null): number | undefined {
  const m = time && /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(time);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}.${(m[2] ?? '').slice(0, 3).padEnd(3, '0')}${m[3]}`);
  return Number.isFinite(ms) ? ms : undefined;
}

/** The journal's __REALTIME_TIMESTAMP (µs) as RFC 3339 UTC with microseconds. */
export function usecTime(usec: string): string | null {
  if (!/^\d{1,17}$/.test(usec)) return null;
  const n = BigInt(usec);
  const iso = new Date(Number(n / 1000n)).toISOString(); // …T12:34:56.789Z
  return `${iso.slice(0, 19)}.${String(n % 1_000_000n).padStart(6, '0')}Z`;
}

// ---------------------------------------------------------------------------------------------
// Node steps (scripts/sneakpeek/events.sh)

export interface SourcePlan {
  key: number;
  tool: EventTool;
  /** The engine and name that find the container on its node (when its id is not known here). */
  engine: Engine;
  name: string;
  /** The container id, when known (cluster runs, -f, or learnt from an earlier session). */
  id?: string;
  resume: string;
}

/** Step: one source (sp_ev_id when the id is known here, else sp_ev_name asks the engine). */
export function sourceStep(cfg: Config, s: SourcePlan): string {
  const envDir = envDirOf(cfg, s.tool);
  if (s.id !== undefined) return sh`sp_ev_id ${s.key} ${s.tool} ${instanceIdOf(s.id)} ${s.id} ${s.resume} ${envDir}`;
  return sh`sp_ev_name ${s.key} ${s.tool} ${s.engine} ${s.name} ${s.resume} ${envDir}`;
}

/** Step: read every source given before it, from the config's log target. */
export function readStep(cfg: Config, o: { follow: boolean; since?: Since }): string {
  const opts = [...(o.follow ? ['-f'] : []), ...(o.since ? ['-s', o.since.node] : []), cfg.log.target, trim(checkUnitPath('log.dir', cfg.log.dir))];
  return sh`sp_events ${opts}`;
}

// ---------------------------------------------------------------------------------------------
// One source, read across sessions

/** A bounded set of the most recent keys (old keys never match again: they hold a time). */
class RecentKeys {
  private keys = new Set<string>();
  constructor(private readonly max = 4096) {}
  add(k: string): void {
    this.keys.add(k);
    if (this.keys.size > this.max) this.keys.delete(this.keys.values().next().value!);
  }
  take(k: string): boolean {
    return this.keys.delete(k);
  }
}

/** An env file's NAME=value lines. */
export function envValues(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

export class SourceReader {
  /** Where the next session starts reading this source: `-`, or the POS of a line. */
  resume = '-';
  /** The container's UpperDir (fswatch: host paths → container paths). */
  upperDir: string | undefined;
  private lastPos = '-';
  private bcc: BccExecColumn[] | undefined;
  private asm = new ExecAssembler();
  /** Unfinished execs: key → the POS just before their first line. */
  private starts = new Map<string, string>();
  private printed = new RecentKeys();

  constructor(readonly type: EventType) {}

  /** The instance's env file, as the node read it (EVSRC). */
  env(text: string): void {
    const dir = envValues(text).SNEAKPEEK_WATCH_DIR;
    if (dir) this.upperDir = dir;
  }

  /** One logged line (latin1: one char per byte) → the events it completes. */
  line(pos: string, usec: string, message: string): MonitorEvent[] {
    const prev = this.lastPos;
    this.lastPos = pos;
    const text = /^[\x00-\x7f]*$/.test(message) ? message : bytesText(Buffer.from(message, 'latin1'));
    let out: MonitorEvent[] = [];
    if (this.type === 'procmon') {
      const bt = parseBtExecLine(text);
      if (bt) {
        out = this.execs(this.asm.take(text));
        // (an exec without arguments is complete with its first line)
        if (bt.line === 'exec' && bt.expect > 0) this.starts.set(bt.key, prev);
      } else {
        const header = bccExecHeader(text);
        if (header) this.bcc = header;
        else {
          const ev = parseBccExecLine(text, this.bcc);
          if (ev) out = [ev];
        }
      }
    } else if (this.type === 'tcptracer') {
      const ev = parseBtTcpLine(text) ?? parseBccTcpLine(text);
      // BCC also reports closes; --events shows connects and accepts, as the bpftrace program does.
      if (ev && ev.kind !== 'close') out = [ev];
    } else {
      const up = upperDirOfHeader(text);
      if (up) this.upperDir = up;
      else {
        const ev = parseFswatchEvent(text, this.upperDir ?? '');
        if (ev) out = [ev.path === null || this.upperDir ? ev : { ...ev, path: null }];
      }
    }
    this.resume = this.starts.size ? this.starts.values().next().value! : pos;
    for (const ev of out) if (ev.time === null && usec) ev.time = usecTime(usec);
    return out;
  }

  /** A complete read ended: execs still waiting for lines come out, marked truncated. */
  end(): MonitorEvent[] {
    const out = this.execs(this.asm.flushKeyed());
    this.resume = this.lastPos;
    return out;
  }

  /** A new session starts at `resume`: forget what was half read (it is read again). */
  reconnect(): void {
    this.asm = new ExecAssembler();
    this.starts.clear();
    this.lastPos = this.resume;
  }

  private execs(done: KeyedExec[]): MonitorEvent[] {
    const out: MonitorEvent[] = [];
    for (const { key, event } of done) {
      this.starts.delete(key);
      if (this.printed.take(key)) continue; // printed before a reconnect
      out.push(event);
    }
    // Printed while an older exec is unfinished: a reconnect would read it again.
    if (this.starts.size) for (const { key } of done) this.printed.add(key);
    return out;
  }
}
