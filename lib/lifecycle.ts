// --status and --reconcile for -t fswatch|procmon|tcptracer: keep what is watched true over time.
// Pure: config and targets in, node steps out; records in, verdicts and lines out. The node side
// is scripts/sneakpeek.sh's sp_lc_* functions (they only look, or set up and tear down with the
// same functions as setup and --stop); every judgement is made here.
//
// Why: pods come and go, and mount-namespace inodes are recycled. `docker stop web; docker run
// other; docker start web` gives `other` the inode `web` had, and web's tracer then reports
// other's execs under web's name. So an instance is judged by asking the engine for its
// container's CURRENT namespace (or UpperDir), never by finding its inode alive.
//
// An instance (TOOL@ID.service, ID = 12 hex) is found on its node from its env file AND from
// systemd. Its state, worst first:
//   orphan    the engine has no such container
//   unknown   the engine did not answer (a daemon down): nothing is concluded, nothing removed
//   missing   a selected container has no instance
//   stale     a tracer's container is not running, or its map / env file does not hold exactly the
//             container's current mount-namespace inode; fswatch's env file names another UpperDir;
//             or there is no env file
//   failed    the unit failed (or is restarting after a failure): with its last log line
//   inactive  the unit is not running (stopped, or still starting)
//   active    running, and current
// --reconcile, in one session per node under the node lock (sp_lock): sets up every selected
// container (missing → started; stale → restarted: the new key goes into the map before the old
// one leaves, and the unit restarts with the new inode; failed/inactive → started again), then
// the node's other instances (cluster runs): no such container → stopped and removed (map, env
// file); a tracer's container that stopped → the same; a running one → set up again like a
// selected one. Instances of containers that run but are not selected are refreshed, never
// removed: a namespace filter, an -e or a pod list with a bad entry must not tear down the rest.
import { checkMapHolds, parseMapRecord } from './bpfmap.ts';
import type { Backend, Config, Engine } from './config.ts';
import { hexBytesToInode, type ByteOrder } from './endian.ts';
import { fswatchSpec, inotifyStep, TOOL as FSWATCH, watchStep } from './fswatch-unit.ts';
import { sh } from './quote.ts';
import type { Target } from './targets.ts';
import { backendBinary, programStep, setupStep, tracerSpec, TOOL_OF, type MonitorType, type Tool } from './tracers.ts';
import { checkUnitPath, envDirOf, reloadStep, startStep, templateStep, trim } from './units.ts';
import { utf8, type NodeRecord, type RecordOf } from './wire.ts';

export type LifecycleType = 'fswatch' | MonitorType;
export type UnitTool = Tool | typeof FSWATCH;

export const STATES = ['active', 'inactive', 'failed', 'stale', 'missing', 'unknown', 'orphan'] as const;
export type State = (typeof STATES)[number];

export const toolOf = (type: LifecycleType): UnitTool => (type === 'fswatch' ? FSWATCH : TOOL_OF[type]);
const OTHER_TRACER: Record<Tool, Tool> = { execsnoop: 'tcptracer', tcptracer: 'execsnoop' };

/** The key of instance ID's records (sp_lc_*: i<ID>). */
export const instanceKey = (id: string) => `i${id}`;

/** Node paths the sp_lc_* steps take. */
function dirs(cfg: Config, tool: UnitTool) {
  return {
    envDir: envDirOf(cfg, tool),
    mapDir: tool === FSWATCH ? '' : trim(checkUnitPath('mapDir', cfg.mapDir)),
    logDir: cfg.log.target === 'file' ? trim(checkUnitPath('log.dir', cfg.log.dir)) : '',
  };
}

/** The engine to ask about an instance whose env file names none (written before it did). */
export const defaultEngine = (targets: readonly Target[], cfg: Config): Engine => targets[0]?.engine ?? cfg.engine;

// ---- node steps -------------------------------------------------------------------------------

/**
 * --status: read only (no lock, no file, map or unit touched). Each selected container and its
 * instance; with `all` (cluster runs), every other instance of the tool on the node too.
 */
export function statusSteps(cfg: Config, type: LifecycleType, targets: readonly Target[], all: boolean): string[] {
  const tool = toolOf(type);
  const d = dirs(cfg, tool);
  return [
    sh`sp_lc_units ${tool}`,
    ...targets.map((t) => sh`sp_lc_status ${t.key} ${t.engine ?? cfg.engine} ${t.name} ${tool} ${d.envDir} ${d.mapDir} ${d.logDir}`),
    ...(all ? [sh`sp_lc_others ${tool} ${d.envDir} ${d.mapDir} ${d.logDir} ${defaultEngine(targets, cfg)}`] : []),
  ];
}

export interface ReconcileOptions {
  backend: Backend;
  /** The bpftrace program's text (backend bpftrace). */
  program?: string;
}

/**
 * --reconcile: under the node lock, the template (and program) as setup installs them, every
 * instance's state before (INST), each selected container set up as setup does it, the other
 * instances (`all`: every one on the node; else only a selected container the engine knows but
 * could not set up), one daemon-reload, the starts, one settle.
 */
export function reconcileSteps(cfg: Config, type: LifecycleType, targets: readonly Target[], all: boolean, o: ReconcileOptions): string[] {
  const tool = toolOf(type);
  const d = dirs(cfg, tool);
  const keys = targets.map((t) => t.key);
  const engine = defaultEngine(targets, cfg);
  const mode = all ? 'all' : 'only';
  const head: string[] = [];
  let setup: (t: Target) => string;
  let rest: string;
  if (tool === FSWATCH) {
    head.push(inotifyStep(), templateStep(cfg, fswatchSpec(cfg), [cfg.paths.fswatch]));
    setup = (t) => watchStep(cfg, t.key, t.engine ?? cfg.engine, t.name);
    rest = sh`sp_lc_rest ${mode} ${tool} ${d.envDir} ${engine} ${cfg.fswatch.imageDirs} '' ''`;
  } else {
    head.push(templateStep(cfg, tracerSpec(cfg, tool), [backendBinary(cfg, tool, o.backend)]));
    if (o.backend === 'bpftrace') head.push(programStep(cfg, tool, o.program ?? ''));
    setup = (t) => setupStep(cfg, t.key, t.engine ?? cfg.engine, t.name, tool, o.backend);
    rest = sh`sp_lc_rest ${mode} ${tool} ${d.envDir} ${engine} ${o.backend} ${d.mapDir} ${envDirOf(cfg, OTHER_TRACER[tool])}`;
  }
  return [
    'sp_lock',
    ...head,
    sh`sp_lc_units ${tool}`,
    sh`sp_lc_before ${tool} ${d.envDir}`,
    // sp_cid/sp_id cleared first: sp_lc_saw reads what this container's step found.
    // sp_lc_fresh: a running unit whose env file was written after it started is restarted too.
    ...targets.map((t) => `sp_cid= sp_id=; ${setup(t)}; sp_lc_saw; ${sh`sp_lc_fresh ${t.key} ${d.envDir}`}`),
    rest,
    reloadStep(),
    ...keys.map(startStep),
    'sp_lc_start',
    `sp_lc_settle ${keys.join(' ')}`.trimEnd(),
  ];
}

// ---- records → per-key facts ------------------------------------------------------------------

/** Every record of one key (a selected container's number, or i<ID>), by tag. */
export interface KeyRecords {
  inst?: RecordOf<'INST'>;
  unitStart?: RecordOf<'UNITSTART'>;
  facts?: RecordOf<'FACTS'>;
  ns?: RecordOf<'NS'>;
  gone?: RecordOf<'GONE'>;
  mapKeys?: RecordOf<'MAPKEYS'>;
  lastLog?: string;
  map?: RecordOf<'MAP'>;
  ok?: RecordOf<'OK'>;
  mapGone?: RecordOf<'MAPGONE'>;
  /** The first ERR (later ones are its consequences). */
  error?: string;
  warnings: string[];
}

export interface NodeLifecycle {
  keys: Map<string, KeyRecords>;
  /** Node-level WARN lines. */
  warnings: string[];
  /** UNIT and PROG records: [file, state]. */
  templates: [string, string][];
  /** Another run held the node's lock (--reconcile): nothing was changed. */
  busy?: string;
}

/** Group one node's records by key (text fields decoded as UTF-8). */
export function groupRecords(records: readonly NodeRecord[]): NodeLifecycle {
  const out: NodeLifecycle = { keys: new Map(), warnings: [], templates: [] };
  const of = (key: string): KeyRecords => {
    let k = out.keys.get(key);
    if (!k) out.keys.set(key, (k = { warnings: [] }));
    return k;
  };
  for (const r of records) {
    if (r.key === '-') {
      if (r.tag === 'BUSY') out.busy = utf8(r.message);
      else if (r.tag === 'WARN') out.warnings.push(utf8(r.message));
      else if (r.tag === 'UNIT' || r.tag === 'PROG') out.templates.push([utf8(r.file), r.state]);
      continue;
    }
    const k = of(r.key);
    switch (r.tag) {
      case 'INST': k.inst = r; break;
      case 'UNITSTART': k.unitStart = r; break;
      case 'FACTS': k.facts = r; break;
      case 'NS': k.ns = r; break;
      case 'GONE': k.gone = r; break;
      case 'MAPKEYS': k.mapKeys = r; break;
      case 'LASTLOG': k.lastLog = utf8(r.line); break;
      case 'MAP': k.map = r; break;
      case 'OK': k.ok = r; break;
      case 'MAPGONE': k.mapGone = r; break;
      case 'ERR': k.error ??= utf8(r.message); break;
      case 'WARN': k.warnings.push(utf8(r.message)); break;
      default: break;
    }
  }
  return out;
}

/** An env file's NAME=value lines (comments and anything else skipped); the last one wins. */
export function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}

/**
 * The instance's env file was written after its unit's main process started: the unit does not run
 * with what it says (a run was ended between writing it and restarting the unit).
 */
export function envNewer(k: KeyRecords | undefined): boolean {
  const r = k?.unitStart;
  return !!r && /^\d+$/.test(r.start) && /^\d+$/.test(r.envMtime) && BigInt(r.envMtime) > BigInt(r.start);
}

/** The inodes a MAPKEYS dump holds (bpftool -j: [{key: ["0x..", …], value: …}, …]). */
export function mapInodes(dump: string, order: ByteOrder): bigint[] {
  const entries: unknown = JSON.parse(dump);
  if (!Array.isArray(entries)) throw new Error('bpftool -j map dump: expected a list');
  return entries.map((e: unknown) => {
    const k = (e as { key?: unknown }).key;
    if (!Array.isArray(k)) throw new Error('bpftool -j map dump: an entry without a key');
    return hexBytesToInode(k as string[], order);
  });
}

// ---- --status ---------------------------------------------------------------------------------

/** One instance as the node showed it: the unit, its env file, its container now, its map. */
export interface InstanceView {
  tool: UnitTool;
  id: string;
  load: string;
  active: string;
  sub: string;
  /** The env file's values; undefined when there is none. */
  env?: Record<string, string>;
  /** What the engine says now (undefined when it did not answer or has no such container). */
  container?: { id: string; state: string; pid: string; upper: string };
  /** The container's mount-namespace inode now (while it runs). */
  inode?: string;
  gone?: { engine: string; gone: boolean; message: string };
  map?: { file: string; state: string; inodes?: bigint[]; error?: string };
  lastLog?: string;
  /** Its env file was written after the unit started (envNewer). */
  envNewer?: boolean;
}

/** The view of an instance from its records: `inst` (INST, MAPKEYS, LASTLOG) and `ctr` (FACTS, NS, GONE). */
export function viewOf(inst: KeyRecords, ctr: KeyRecords): InstanceView | undefined {
  const i = inst.inst;
  if (!i) return undefined;
  const v: InstanceView = { tool: i.tool as UnitTool, id: i.id, load: i.load, active: i.active, sub: i.sub };
  if (i.hasEnv === '1') v.env = parseEnvFile(utf8(i.env));
  if (ctr.facts) v.container = { id: ctr.facts.id, state: ctr.facts.state, pid: ctr.facts.pid, upper: utf8(ctr.facts.upper) };
  if (ctr.ns) v.inode = ctr.ns.inode;
  if (ctr.gone) v.gone = { engine: ctr.gone.engine, gone: ctr.gone.gone === '1', message: utf8(ctr.gone.message) };
  const m = inst.mapKeys;
  if (m) {
    v.map = { file: utf8(m.file), state: m.state };
    if (m.state === 'present') {
      try {
        v.map.inodes = mapInodes(utf8(m.dump), m.order as ByteOrder);
      } catch (err) {
        v.map = { ...v.map, state: 'error', error: (err as Error).message };
      }
    } else if (m.state === 'error') v.map.error = utf8(m.dump);
  }
  if (inst.lastLog !== undefined) v.lastLog = inst.lastLog;
  if (envNewer(inst)) v.envNewer = true;
  return v;
}

const unitState = (v: InstanceView) => `unit ${v.active}${v.sub && v.sub !== v.active ? ` (${v.sub})` : ''}`;
const withLog = (s: string, v: InstanceView) => (v.lastLog ? `${s}; last log: ${v.lastLog}` : s);

/** What state an instance is in, and what is wrong with it (empty for active). */
export function judge(v: InstanceView): { state: State; why: string } {
  if (v.gone) {
    return v.gone.gone
      ? { state: 'orphan', why: `container gone (${v.gone.engine}: ${v.gone.message})` }
      : { state: 'unknown', why: `${v.gone.engine} did not answer: ${v.gone.message}` };
  }
  const loaded = v.load !== '-' && v.load !== 'not-found';
  if (!v.env && (!loaded || v.active === 'inactive')) return { state: 'missing', why: 'not set up' };
  const stale: string[] = [];
  if (!v.env) stale.push('no env file');
  const c = v.container;
  if (v.tool === FSWATCH) {
    const dir = v.env?.SNEAKPEEK_WATCH_DIR;
    if (v.env && c && dir !== c.upper) stale.push(`watches ${dir || 'nothing'}, the container's UpperDir is ${c.upper || 'unknown'}`);
  } else if (!c || c.state !== 'running') {
    stale.push(`container not running (${c?.state ?? 'unknown'}): the mount namespace it was set up for is gone`);
  } else if (!v.inode) {
    stale.push(`cannot read the mount namespace of the container's process (pid ${c.pid || 'none'})`);
  } else {
    const now = BigInt(v.inode);
    const envIno = v.env?.SNEAKPEEK_MNTNS_INODE;
    if (v.env && envIno !== v.inode) stale.push(`set up for mount namespace ${envIno || 'none'}, the container's is now ${v.inode}`);
    const m = v.map;
    if (!m) stale.push('its map was not read');
    else if (m.state === 'absent') stale.push(`map ${m.file} missing`);
    else if (m.state !== 'present') stale.push(`map ${m.file} unreadable: ${m.error ?? m.state}`);
    else if (m.inodes!.length !== 1 || m.inodes![0] !== now)
      stale.push(`map holds ${m.inodes!.join(', ') || 'nothing'}, the container's mount namespace is ${v.inode}`);
  }
  if (!stale.length && v.envNewer && v.active === 'active') stale.push('its env file changed after the unit started: the unit does not run with what it says');
  if (stale.length) return { state: 'stale', why: v.active === 'active' ? stale.join('; ') : withLog(`${stale.join('; ')}; ${unitState(v)}`, v) };
  if (v.active === 'failed' || (v.active === 'activating' && v.sub === 'auto-restart')) return { state: 'failed', why: withLog(unitState(v), v) };
  if (v.active !== 'active' && v.active !== 'reloading') return { state: 'inactive', why: unitState(v) };
  return { state: 'active', why: '' };
}

export interface StatusRow {
  node: string;
  id: string;
  unit: string;
  state: State;
  why: string;
  /** The selected container this instance is of (cluster runs: pod, namespace…). */
  target?: Target;
  view: InstanceView;
}

export interface StatusReport {
  rows: StatusRow[];
  /** Selected containers the node could not look at: [target, message]. */
  errors: [Target, string][];
}

/** One node's --status answer: a row per instance (selected first, in order), errors per target. */
export function statusReport(node: string | undefined, targets: readonly Target[], g: NodeLifecycle): StatusReport {
  const where = node ?? 'localhost';
  const report: StatusReport = { rows: [], errors: [] };
  const used = new Set<string>();
  const row = (id: string, inst: KeyRecords, ctr: KeyRecords, target?: Target) => {
    const view = viewOf(inst, ctr);
    if (!view) return false;
    report.rows.push({ node: where, id, unit: `${view.tool}@${id}.service`, ...judge(view), target, view });
    return true;
  };
  for (const t of targets) {
    const ctr = g.keys.get(String(t.key));
    const id = ctr?.facts?.id.slice(0, 12);
    if (ctr?.gone && !ctr.facts) report.errors.push([t, ctr.gone.message ? utf8(ctr.gone.message) : 'the engine does not know it']);
    else if (ctr?.error) report.errors.push([t, ctr.error]);
    else if (!id || !row(id, g.keys.get(instanceKey(id)) ?? { warnings: [] }, ctr!, t)) report.errors.push([t, 'no result from the node']);
    if (id) used.add(instanceKey(id));
  }
  for (const [key, k] of g.keys) {
    if (!key.startsWith('i') || used.has(key) || !k.inst) continue;
    row(k.inst.id, k, k);
  }
  return report;
}

/** `NODE,ID UNIT STATE [what is wrong]`. */
export function statusLine(r: StatusRow): string {
  return `${r.node},${r.id} ${r.unit} ${r.state}${r.why ? ` ${r.why}` : ''}\n`;
}

/** What the selection said of a container (cluster runs: its pod), for --json. */
function selection(t: Target | undefined): Record<string, unknown> {
  if (!t) return {};
  const m = t.meta;
  if (!m) return { container: t.name };
  return { pod: m.pod, namespace: m.namespace, container: m.container, nodeName: m.node, containerId: m.id };
}

export function statusJson(r: StatusRow): string {
  const v = r.view;
  const obj: Record<string, unknown> = { node: r.node, id: r.id, unit: r.unit, state: r.state, why: r.why, active: v.active, sub: v.sub, ...selection(r.target) };
  if (v.container) Object.assign(obj, { containerId: v.container.id, containerState: v.container.state });
  if (v.inode) obj.inode = Number(v.inode);
  if (v.tool === FSWATCH) Object.assign(obj, { watchDir: v.env?.SNEAKPEEK_WATCH_DIR, upperDir: v.container?.upper });
  else {
    const envIno = v.env?.SNEAKPEEK_MNTNS_INODE;
    Object.assign(obj, { envInode: envIno ? Number(envIno) : undefined, map: v.map?.file, mapInodes: v.map?.inodes?.map(Number), backend: v.env?.SNEAKPEEK_BACKEND });
  }
  if (v.lastLog !== undefined) obj.lastLog = v.lastLog;
  return `${JSON.stringify(obj)}\n`;
}

/** `3 active, 1 stale, …` (states with none left out). */
export function statusSummary(counts: Partial<Record<State, number>>, failed: number): string {
  const parts = STATES.filter((s) => counts[s]).map((s) => `${counts[s]} ${s}`);
  if (failed) parts.push(`${failed} failed to look at`);
  return parts.length ? parts.join(', ') : 'no instances';
}

// ---- --reconcile ------------------------------------------------------------------------------

export const CHANGES = ['started', 'restarted', 'removed', 'unchanged', 'failed'] as const;
export type Change = (typeof CHANGES)[number];

export interface ChangeRow {
  node: string;
  /** 12-hex id; undefined when the engine never named the container. */
  id?: string;
  unit?: string;
  change: Change;
  why: string;
  target?: Target;
  /** The inode the instance is set up for now (tracers). */
  inode?: string;
}

/** Why an instance that ran was restarted: what changed between its env file before and now. */
function restartWhy(before: Record<string, string> | undefined, k: KeyRecords, newer: boolean): string {
  const ino = k.ns?.inode;
  const old = before?.SNEAKPEEK_MNTNS_INODE;
  if (ino && old && ino !== old) return `stale: mount namespace ${old} → ${ino}`;
  const upper = k.facts ? utf8(k.facts.upper) : undefined;
  const dir = before?.SNEAKPEEK_WATCH_DIR;
  if (upper && dir && upper !== dir) return `stale: UpperDir ${dir} → ${upper}`;
  if (newer) return 'stale: its env file changed after the unit started';
  if (!before) return 'stale: no env file';
  return 'its unit template, program or env file changed';
}

/**
 * What --reconcile did to one key's instance (`before`: its INST record from before the run;
 * `newer`: its env file had been written after its unit started, envNewer).
 */
export function changeOf(k: KeyRecords, before: RecordOf<'INST'> | undefined, newer = false): { change: Change; why: string } {
  if (k.error) return { change: 'failed', why: k.error };
  if (k.map) {
    // As after setup: the map must hold exactly the inode, decoded here independently of the sh.
    let bad: string | undefined;
    try {
      bad = k.ns ? checkMapHolds(parseMapRecord(k.map), k.ns.inode, true) : 'no mount namespace inode reported';
    } catch (err) {
      bad = (err as Error).message;
    }
    if (bad) return { change: 'failed', why: bad };
  }
  const act = k.ok?.action;
  if (!act) return { change: 'failed', why: 'the node script ended before this was done' };
  const env = before?.hasEnv === '1' ? parseEnvFile(utf8(before.env)) : undefined;
  if (act === 'stopped' || act === 'absent') {
    if (k.gone) return { change: 'removed', why: `orphan: container gone (${utf8(k.gone.message)})` };
    return { change: 'removed', why: `container not running (${k.facts?.state ?? 'unknown'}): its mount namespace is gone` };
  }
  if (act === 'running') return { change: 'unchanged', why: '' };
  if (act === 'restarted') return { change: 'restarted', why: restartWhy(env, k, newer) };
  // started: nothing ran before
  const was = before?.active;
  if (!before || (!env && (before.load === '-' || before.load === 'not-found' || was === 'inactive'))) return { change: 'started', why: 'missing' };
  if (was === 'failed' || (was === 'activating' && before.sub === 'auto-restart')) return { change: 'restarted', why: `was failed${env && k.ns?.inode && env.SNEAKPEEK_MNTNS_INODE !== k.ns.inode ? `; ${restartWhy(env, k, false)}` : ''}` };
  return { change: 'started', why: `was ${was ?? 'inactive'}${env && k.ns?.inode && env.SNEAKPEEK_MNTNS_INODE !== k.ns.inode ? `; ${restartWhy(env, k, false)}` : ''}` };
}

/** One node's --reconcile answer: a row per selected container, then per other instance dealt with. */
export function reconcileReport(node: string | undefined, tool: UnitTool, targets: readonly Target[], g: NodeLifecycle): ChangeRow[] {
  const where = node ?? 'localhost';
  const rows: ChangeRow[] = [];
  const before = (id: string | undefined) => (id ? g.keys.get(instanceKey(id))?.inst : undefined);
  for (const t of targets) {
    const k = g.keys.get(String(t.key)) ?? { warnings: [] };
    const full = k.ns?.id ?? k.facts?.id ?? (t.label ? t.name : undefined);
    const id = full && /^[0-9a-f]{12}/.test(full) ? full.slice(0, 12) : undefined;
    const unit = k.ok?.unit ?? (id ? `${tool}@${id}.service` : undefined);
    rows.push({ node: where, id, unit, ...changeOf(k, before(id), envNewer(id ? g.keys.get(instanceKey(id)) : undefined)), target: t, inode: k.ns?.inode });
  }
  for (const [key, k] of g.keys) {
    if (!key.startsWith('i') || (!k.ok && !k.error)) continue;
    const id = key.slice(1);
    rows.push({ node: where, id, unit: k.ok?.unit ?? `${tool}@${id}.service`, ...changeOf(k, k.inst, envNewer(k)), inode: k.ns?.inode });
  }
  return rows;
}

/** NODE,ID (a container the engine never named: the selection's label, or NODE,NAME). */
export function changeWho(r: ChangeRow): string {
  return r.id ? `${r.node},${r.id}` : r.target?.label ?? `${r.node},${r.target?.name ?? '?'}`;
}

/** `NODE,ID UNIT CHANGE [why]`. */
export function changeLine(r: ChangeRow): string {
  return `${changeWho(r)} ${r.unit ?? '-'} ${r.change}${r.why ? ` ${r.why}` : ''}\n`;
}

export function changeJson(r: ChangeRow): string {
  const obj: Record<string, unknown> = { node: r.node, id: r.id, unit: r.unit, change: r.change, why: r.why, ...selection(r.target) };
  if (r.inode) obj.inode = Number(r.inode);
  return `${JSON.stringify(obj)}\n`;
}

/** `N started, M restarted, K removed, J unchanged` (+ failed, busy nodes when there are any). */
export function reconcileSummary(counts: Record<Change, number>, busyNodes: number): string {
  let s = `${counts.started} started, ${counts.restarted} restarted, ${counts.removed} removed, ${counts.unchanged} unchanged`;
  if (counts.failed) s += `, ${counts.failed} failed`;
  if (busyNodes) s += `, ${busyNodes} node${busyNodes > 1 ? 's' : ''} busy (left for the next run)`;
  return s;
}
