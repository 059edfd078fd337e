// `sneakpeek --events` output: one line per event, labelled with where it happened. Pure.
//
// Text: the run's usual prefix (NODE,CONTAINERID12 cluster-wide, else the container's name),
// the event's time, a word for what happened, its fields:
//   PREFIX TIME exec pid=P ppid=PP uid=U ret=R comm=C file=F [UPPER(upper|copyup)] args: A0 A1 …
//   PREFIX TIME connect|accept pid=P comm=C SADDR:SPORT ->|<- DADDR:DPORT
//   PREFIX TIME file PATH FLAG,FLAG…
// A text value is printed as it is unless it holds a blank, a quote, a backslash, a control
// character or a byte that is not UTF-8 (or is empty): then in double quotes, with \" \\ \t \n \r
// and \xNN for other control characters and for each byte that is not UTF-8.
//
// JSON: one object per line: time, node, nodeIP, pod, namespace, container, id, type, then the
// event's own fields (lib/events.ts). A text that is not valid UTF-8 follows lib/json-bytes.ts:
// U+FFFD in the text, and its exact bytes in base64 in a `<name>Bytes` field (argsBytes: every
// argument, when one of them is not UTF-8).
import type { EventType } from './event-reader.ts';
import { textBytes, type MonitorEvent } from './events.ts';
import { bytesField } from './json-bytes.ts';

export interface EventLabel {
  /** The text lines' prefix. */
  prefix: string;
  node: string | null;
  nodeIP: string | null;
  pod: string | null;
  namespace: string | null;
  container: string | null;
  id: string | null;
}

// A lone low surrogate U+DC80..U+DCFF is a byte that was not UTF-8 (lib/events.ts bytesText).
const PLAIN = /^(?:[^\s"\\\x00-\x1f\x7f-\x9f\ud800-\udfff]|[\ud800-\udbff][\udc00-\udfff])+$/;

/** A text value for a text line: itself, or double-quoted with escapes (see the header). */
export function showText(s: string): string {
  if (PLAIN.test(s)) return s;
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff) {
      out += s.slice(i, i + 2);
      i++;
    } else if (c >= 0xdc80 && c <= 0xdcff) out += `\\x${(c - 0xdc00).toString(16).padStart(2, '0')}`;
    else if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c === 0x09) out += '\\t';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else if (c >= 0x80 && c <= 0x9f) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += s[i];
  }
  return `${out}"`;
}

const hostPort = (addr: string, port: number) => (addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`);
const orQ = (n: number | null) => (n === null ? '?' : String(n));
/** BCC's own time column, when the source has no date (BCC on the file target). */
const clockOf = (ev: MonitorEvent) => ('clock' in ev ? ev.clock : undefined);

/** One text line (with its newline). */
export function eventText(l: EventLabel, ev: MonitorEvent): string {
  // (the prefix too: with -f it is the inspect document's Name, which may hold anything)
  const head = `${showText(l.prefix)} ${ev.time ?? clockOf(ev) ?? '-'}`;
  if (ev.type === 'procmon') {
    const upper = ev.upperLayer ? ` UPPER(${ev.layer ?? 'upper'})` : '';
    const cut = ev.truncated ? ' [cut]' : '';
    const args = ev.args.length ? ` ${ev.args.map(showText).join(' ')}` : '';
    return `${head} exec pid=${ev.pid} ppid=${orQ(ev.ppid)} uid=${orQ(ev.uid)} ret=${ev.ret} comm=${showText(ev.comm)} file=${showText(ev.filename)}${upper} args:${args}${cut}\n`;
  }
  if (ev.type === 'tcptracer') {
    const arrow = ev.kind === 'accept' ? '<-' : '->';
    return `${head} ${ev.kind} pid=${ev.pid} comm=${showText(ev.comm)} ${hostPort(ev.saddr, ev.sport)} ${arrow} ${hostPort(ev.daddr, ev.dport)}\n`;
  }
  return `${head} file ${showText(ev.path ?? ev.hostPath)} ${ev.flags.join(',')}\n`;
}

/** A text field for JSON: itself when UTF-8, else U+FFFD text plus `<key>Bytes` (base64). */
function textField(key: string, s: string): Record<string, string> {
  return /^[\x00-\x7f]*$/.test(s) ? { [key]: s } : bytesField(key, textBytes(s).toString('latin1'));
}

/** One JSON line (with its newline). */
export function eventJson(l: EventLabel, type: EventType, ev: MonitorEvent): string {
  const o: Record<string, unknown> = {
    time: ev.time,
    node: l.node,
    nodeIP: l.nodeIP,
    pod: l.pod,
    namespace: l.namespace,
    container: l.container,
    id: l.id,
    type,
  };
  if (ev.type === 'procmon') {
    const args = ev.args.map((a) => textField('a', a));
    Object.assign(o, { pid: ev.pid, ppid: ev.ppid, uid: ev.uid }, textField('comm', ev.comm), { ret: ev.ret }, textField('filename', ev.filename));
    o.args = args.map((a) => a.a);
    if (args.some((a) => a.aBytes !== undefined)) o.argsBytes = ev.args.map((a) => textBytes(a).toString('base64'));
    o.upperLayer = ev.upperLayer;
    if (ev.layer) o.layer = ev.layer;
    if (ev.truncated) Object.assign(o, { argc: ev.argc, truncated: ev.truncated });
  } else if (ev.type === 'tcptracer') {
    Object.assign(o, { kind: ev.kind, ip: ev.ip, saddr: ev.saddr, sport: ev.sport, daddr: ev.daddr, dport: ev.dport, pid: ev.pid }, textField('comm', ev.comm));
  } else {
    Object.assign(o, ev.path === null ? { path: null } : textField('path', ev.path), textField('hostPath', ev.hostPath), { flags: ev.flags });
  }
  if (ev.time === null && clockOf(ev) !== undefined) o.clock = clockOf(ev);
  return `${JSON.stringify(o)}\n`;
}
