// sneakpeek -t procmon|tcptracer|fswatch --events [--since TIME] [--follow] [--json] [--upper-only]:
// what the selected containers' units logged, read back from every node at once and printed as
// one labelled stream. Per node ONE script (scripts/sneakpeek/events.sh, after
// get_container_ns.sh): per source (a container and a type: one unit instance) sp_ev_id, or
// sp_ev_name when only the engine knows the container's id, → EVSRC; then sp_events reads them
// all (one journalctl, or the log files) → EV records, EVEND. lib/event-reader.ts turns lines into
// events and keeps where to resume; lib/event-format.ts prints them.
//
// --follow: every node's session runs at once, without a deadline, until Ctrl-C. A session that
// drops (ssh killed, node restarted, keepalives unanswered) is said on stderr and started again
// with backoff (1 s, doubling, at most 30 s), each source resuming just after the last line it
// used: nothing lost, nothing printed twice. Through transport kubectl a session is a pod, which
// must not outlive a killed sneakpeek for long: it lasts timeouts.events, then the next pod takes
// over from the same resume points (without a word, unless -v).
import os from 'node:os';
import { isIP } from 'node:net';
import type { Config } from '../../lib/config.ts';
import { eventJson, eventText, showText, type EventLabel } from '../../lib/event-format.ts';
import {
  EVENT_TOOL, eventTimeMs, readStep, sourceStep, SourceReader, type EventType, type Since,
} from '../../lib/event-reader.ts';
import type { MonitorEvent } from '../../lib/events.ts';
import { byNode, summary, type Target } from '../../lib/targets.ts';
import { instanceIdOf } from '../../lib/units.ts';
import { parseRecord, RecordSplitter, utf8, type NodeRecord } from '../../lib/wire.ts';
import type { BatchArgs } from '../../lib/io/batch.ts';
import type { IO } from '../../lib/io/entry.ts';
import { interruptedBy, onInterrupt, signalExitCode } from '../../lib/io/interrupt.ts';
import { nodeScript } from '../../lib/io/node-files.ts';
import { pool, runNodeScript, viaPod, type NodeRun } from '../../lib/io/runner.ts';

export interface EventsArgs extends BatchArgs {
  types: EventType[];
  since?: Since;
  follow: boolean;
  json: boolean;
  /** Only execs of a file in the container's upper layer (procmon). */
  upperOnly: boolean;
}

/** One unit instance: a container and a type. */
export interface Source {
  key: number;
  target: Target;
  type: EventType;
  reader: SourceReader;
  /** The container's id: from discovery or -f, or as the node named it. */
  id?: string;
  /** Why this source failed (it is left out of later sessions). */
  failed?: string;
  /** The node had an env file for its instance. */
  configured?: boolean;
  events: number;
}

/** Every source of these targets, in order: each container, each type. */
export function sourcesOf(targets: readonly Target[], types: readonly EventType[]): Source[] {
  let key = 0;
  return targets.flatMap((t) =>
    types.map((type) => ({ key: key++, target: t, type, reader: new SourceReader(type), id: discoveredId(t.meta?.id) ?? t.facts?.id, events: 0 })),
  );
}

/** A pod list's container id when it makes an instance id; else (a pods file may say anything) the node's engine names the container, as setup does. */
function discoveredId(id: string | undefined): string | undefined {
  if (id === undefined) return undefined;
  try {
    instanceIdOf(id);
    return id;
  } catch {
    return undefined;
  }
}

/** The node script for one node's sources, each from its resume point. */
export function eventsScript(cfg: Config, sources: readonly Source[], a: Pick<EventsArgs, 'follow' | 'since'>): string {
  const steps = sources
    .filter((s) => !s.failed)
    .map((s) => sourceStep(cfg, { key: s.key, tool: EVENT_TOOL[s.type], engine: s.target.engine ?? cfg.engine, name: s.target.name, id: s.id, resume: s.reader.resume }));
  return nodeScript(cfg, ['get_container_ns', 'sneakpeek/events'], [...steps, readStep(cfg, a)]);
}

/** Where an event happened, for its line. */
export function labelOf(s: Source): EventLabel {
  const t = s.target;
  const m = t.meta ?? {};
  return {
    prefix: t.label ?? t.name,
    node: m.node ?? t.node ?? os.hostname(),
    nodeIP: m.nodeIP ?? (t.node !== undefined && isIP(t.node) ? t.node : null),
    pod: m.pod ?? null,
    namespace: m.namespace ?? null,
    container: m.container ?? t.name,
    id: m.id ?? s.id ?? null,
  };
}

const who = (s: Source) => showText(s.target.label ?? s.target.name);
const sleep = (ms: number) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    const undo = onInterrupt(done);
    function done() {
      clearTimeout(timer);
      undo();
      resolve();
    }
  });

/** Backoff between reconnects: 1 s, doubling, at most this. */
export const MAX_BACKOFF_SECONDS = 30;

export async function runEvents(targets: Target[], cfg: Config, a: EventsArgs, io: IO): Promise<number> {
  const sources = sourcesOf(targets, a.types);
  const nodes = [...byNode(sources.map((s) => ({ node: s.target.node, s })))].map(([node, list]) => ({ node, sources: list.map((x) => x.s) }));
  if (a.dryRun) {
    for (const n of nodes) io.stdout.write(`# node: ${n.node ?? 'localhost'}\n${eventsScript(cfg, n.sources, a)}\n`);
    return 0;
  }

  // Events from every node go to one stdout, a line at a time; a slow reader holds the nodes back.
  const write = (text: string): void | Promise<void> => {
    if (io.stdout.write(text)) return;
    return new Promise<void>((resolve) => io.stdout.once('drain', () => resolve()));
  };
  const show = (s: Source, ev: MonitorEvent): string | undefined => {
    if (a.upperOnly && !(ev.type === 'procmon' && ev.upperLayer === true)) return undefined;
    // Log files carry no time of their own: the node read whole files; the events' times decide.
    if (a.since && cfg.log.target === 'file') {
      const ms = eventTimeMs(ev.time);
      // (a time in whole seconds, as fswatch prints it, covers its whole second)
      const slack = ev.time && !/\.\d/.test(ev.time) ? 999 : 0;
      if (ms !== undefined && ms + slack < a.since.cutoffMs) return undefined;
    }
    s.events++;
    return a.json ? eventJson(labelOf(s), s.type, ev) : eventText(labelOf(s), ev);
  };
  const said = new Set<string>();
  const fail = (s: Source, why: string) => {
    if (s.failed) return;
    s.failed = why;
    // once per container (its types fail together when their node does)
    const line = `sneakpeek: ${who(s)}: ${why}\n`;
    if (!said.has(`${s.target.key}\0${line}`)) io.stderr.write(line);
    said.add(`${s.target.key}\0${line}`);
  };

  /** One session on a node: its script from every source's resume point, records as they come. */
  async function session(
    node: string | undefined,
    list: Source[],
    since: Since | undefined,
    onFirst: () => void,
  ): Promise<{ run: NodeRun; ended: boolean; nodeError?: string; got: boolean; sinceEpoch?: string }> {
    const where = node ?? 'localhost';
    const byKey = new Map(list.map((s) => [String(s.key), s]));
    for (const s of list) s.reader.reconnect();
    const splitter = new RecordSplitter();
    let ended = false;
    let got = false;
    let nodeError: string | undefined;
    let sinceEpoch: string | undefined;
    const handle = (r: NodeRecord, out: string[]) => {
      if (!got) {
        got = true;
        onFirst();
      }
      const s = byKey.get(r.key);
      if (r.tag === 'EV' && s) {
        for (const ev of s.reader.line(r.pos, r.usec, r.message)) {
          const line = show(s, ev);
          if (line) out.push(line);
        }
      } else if (r.tag === 'EVSRC' && s) {
        s.id ??= r.id;
        s.configured = r.env !== '';
        s.reader.env(utf8(r.env));
      } else if (r.tag === 'WARN') {
        io.stderr.write(`sneakpeek: warning: ${s ? who(s) : where}: ${utf8(r.message)}\n`);
      } else if (r.tag === 'ERR') {
        if (s) fail(s, utf8(r.message));
        else nodeError ??= `${where}: ${utf8(r.message)}`;
      } else if (r.tag === 'EVSINCE') {
        sinceEpoch = r.epoch;
      } else if (r.tag === 'EVEND') {
        ended = true;
        for (const x of list) for (const ev of x.reader.end()) {
          const line = show(x, ev);
          if (line) out.push(line);
        }
      }
    };
    const script = eventsScript(cfg, list, { follow: a.follow, since });
    const run = await runNodeScript({ node, script }, cfg, {
      deadline: a.follow ? (viaPod(node, cfg) ? cfg.timeouts.events : 0) : a.deadline,
      env: io.env,
      onStdout: (chunk) => {
        const out: string[] = [];
        splitter.push(chunk, (rec) => {
          const r = parseRecord(rec);
          if (r) handle(r, out);
        });
        if (out.length) return write(out.join(''));
      },
    });
    if (a.verbose && run.stderr.trim()) io.stderr.write(run.stderr);
    return { run, ended, nodeError, got, sinceEpoch };
  }

  async function readNode(node: string | undefined, list: Source[]): Promise<void> {
    const r = await session(node, list, a.since, () => {});
    const why = r.nodeError ?? (r.ended ? undefined : (r.run.failure ?? `${node ?? 'localhost'}: the node script ended early`));
    for (const s of list) {
      if (why) fail(s, why);
      else if (!s.failed && !s.configured && s.events === 0)
        io.stderr.write(`sneakpeek: warning: ${who(s)}: no ${EVENT_TOOL[s.type]} instance is set up for this container (sneakpeek -t ${s.type} starts one), and it logged nothing\n`);
    }
  }

  async function followNode(node: string | undefined, list: Source[]): Promise<void> {
    const where = node ?? 'localhost';
    let delay = 1;
    // --since 10m is counted on the node's clock when it is first reached; later sessions start
    // from that same instant (a source with nothing read yet must not lose what came meanwhile).
    let since = a.since;
    for (let attempt = 0; !interruptedBy(); attempt++) {
      const live = list.filter((s) => !s.failed);
      if (!live.length) return;
      const t0 = Date.now();
      const r = await session(node, live, since, () => {
        if (attempt > 0) io.stderr.write(`sneakpeek: ${where}: reconnected; resuming after the last event printed\n`);
        else if (a.verbose) for (const s of live) if (!s.failed && s.configured === false) io.stderr.write(`sneakpeek: ${who(s)}: no ${EVENT_TOOL[s.type]} instance yet; its events show once one starts\n`);
      });
      if (since && r.sinceEpoch && /^\d+$/.test(r.sinceEpoch)) since = { node: `@${r.sinceEpoch}`, cutoffMs: since.cutoffMs };
      if (interruptedBy()) return;
      if (r.nodeError) {
        for (const s of live) fail(s, r.nodeError);
        return;
      }
      // A pod's session that ran its time: the next one takes over at once.
      if (viaPod(node, cfg) && r.got && r.run.failure === `${where}: timed out after ${cfg.timeouts.events}s`) {
        if (a.verbose) io.stderr.write(`sneakpeek: ${where}: a new pod takes over (each lasts timeouts.events, ${cfg.timeouts.events}s)\n`);
        attempt = -1; // (not a reconnect)
        delay = 1;
        continue;
      }
      // A session that delivered, or lasted, starts the backoff over.
      if (r.got || Date.now() - t0 > MAX_BACKOFF_SECONDS * 1000) delay = 1;
      const why = r.run.failure?.replace(`${where}: `, '') ?? 'the reader on the node ended';
      io.stderr.write(`sneakpeek: ${where}: session lost (${why}); reconnecting in ${delay}s\n`);
      await sleep(delay * 1000);
      delay = Math.min(delay * 2, MAX_BACKOFF_SECONDS);
    }
  }

  const work = (n: { node: string | undefined; sources: Source[] }) => (a.follow ? followNode(n.node, n.sources) : readNode(n.node, n.sources));
  // A follower holds one session per node for as long as it runs: all at once, not `concurrency`.
  await pool(nodes, a.follow ? Math.max(nodes.length, 1) : cfg.concurrency, work);

  const failedTargets = new Set(sources.filter((s) => s.failed).map((s) => s.target));
  const failed = failedTargets.size + (a.failedBefore ?? 0);
  const ok = targets.length - failedTargets.size;
  const sig = interruptedBy();
  if (targets.length > 1 || a.cluster || sig) io.stderr.write(`${sig ? `interrupted (${sig}): ` : ''}${summary(ok, failed)}\n`);
  if (sig) return signalExitCode(sig);
  return failed ? 1 : 0;
}
