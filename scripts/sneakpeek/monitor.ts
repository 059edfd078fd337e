// sneakpeek -t procmon / -t tcptracer. Per node ONE script (scripts/sneakpeek.sh and
// bpftool_map_container_ns.sh): sp_lock; sp_template installs execsnoop@.service /
// tcptracer@.service (and sp_program the bpftrace program) if missing or changed; per container
// sp_tracer asks the engine for its mount namespace (NS), makes <mapDir>/mnt_ns_<ID> hold exactly
// that inode (MAP: bpftool -j dump, checked here) and writes the env file; one daemon-reload;
// sp_start per container; sp_settle → OK. `--stop [--purge]`: sp_tracer_stop undoes it.
import type { Backend, Config } from '../../lib/config.ts';
import { checkMapHolds, parseMapRecord } from '../../lib/bpfmap.ts';
import type { Target } from '../../lib/targets.ts';
import {
  backendArgv, backendBinary, checkTracerConfig, mapFileOf, programPurgeStep, programStep, setupStep, teardownStep, tracerSpec, TOOL_OF,
  type MonitorType, type Tool,
} from '../../lib/tracers.ts';
import { collectUnitRecords, extraOf, logPath, purgeStep, reloadStep, settleStep, startStep, templateStep, type UnitOutcome } from '../../lib/units.ts';
import { parseRecords, utf8 } from '../../lib/wire.ts';
import { runBatch, type BatchArgs } from '../../lib/io/batch.ts';
import type { IO } from '../../lib/io/entry.ts';
import { nodeScript, readProgram } from '../../lib/io/node-files.ts';
import { runNodeScript } from '../../lib/io/runner.ts';

export interface MonitorArgs extends BatchArgs {
  type: MonitorType;
  backend: Backend;
  stop: boolean;
  purge: boolean;
  json: boolean;
}

const LIBS = ['get_container_ns', 'bpftool_map_container_ns', 'sneakpeek'] as const;

/** The setup script for one node's containers. */
export function setupScript(targets: readonly Target[], cfg: Config, a: Pick<MonitorArgs, 'type' | 'backend'>, program?: string): string {
  const tool = TOOL_OF[a.type];
  const keys = targets.map((t) => t.key);
  return nodeScript(cfg, LIBS, [
    'sp_lock',
    templateStep(cfg, tracerSpec(cfg, tool), [backendBinary(cfg, tool, a.backend)]),
    ...(a.backend === 'bpftrace' ? [programStep(cfg, tool, program ?? readProgram(tool))] : []),
    ...targets.map((t) => setupStep(cfg, t.key, t.engine ?? cfg.engine, t.name, tool, a.backend)),
    reloadStep(),
    ...keys.map(startStep),
    settleStep(keys),
  ]);
}

/** The teardown script for one node's containers (and, with purge, the template and program). */
export function teardownScript(targets: readonly Target[], cfg: Config, a: Pick<MonitorArgs, 'type' | 'purge'>): string {
  const tool = TOOL_OF[a.type];
  return nodeScript(cfg, LIBS, [
    'sp_lock',
    ...targets.map((t) => teardownStep(cfg, t.key, t.engine ?? cfg.engine, t.name, tool)),
    ...(a.purge ? [purgeStep(cfg, tool), programPurgeStep(cfg, tool), reloadStep()] : []),
  ]);
}

export interface Row {
  target: Target;
  unit?: string;
  action?: string;
  inode?: string;
  id?: string;
  map?: string;
  mapState?: string;
  error?: string;
  warnings: string[];
}

/** A row's start: the outcome's error and warnings (already text: collectUnitRecords decodes them). */
function rowOf(t: Target, o: UnitOutcome | undefined): { row: Row; error?: string } {
  return { row: { target: t, warnings: [...(o?.warnings ?? [])] }, error: o?.error };
}

/** Turn one container's records into a row; the map must hold exactly its inode. */
export function setupRow(t: Target, o: UnitOutcome | undefined): Row {
  const { row, error } = rowOf(t, o);
  if (!o) return { ...row, error: 'no result from the node' };
  const ns = extraOf(o, 'NS');
  if (ns) [row.id, row.inode] = [ns.id, ns.inode];
  const mapRec = extraOf(o, 'MAP');
  if (mapRec) {
    try {
      const m = parseMapRecord(mapRec);
      row.map = m.file;
      row.mapState = m.state;
      if (m.pruned) row.warnings.push(`removed ${m.pruned} stale key(s) from ${m.file} (an earlier mount namespace of this container)`);
      const bad = row.inode ? checkMapHolds(m, row.inode, true) : 'no mount namespace inode reported';
      if (bad && !error) return { ...row, error: bad };
    } catch (err) {
      if (!error) return { ...row, error: (err as Error).message };
    }
  }
  if (error) return { ...row, error };
  if (!o.unit || !o.action) return { ...row, error: 'the node script ended before this container was done' };
  if (!mapRec) return { ...row, error: 'no map read-back from the node' };
  return { ...row, unit: o.unit, action: o.action };
}

export function teardownRow(t: Target, o: UnitOutcome | undefined): Row {
  const { row, error } = rowOf(t, o);
  if (!o) return { ...row, error: 'no result from the node' };
  const gone = extraOf(o, 'MAPGONE');
  if (gone) [row.map, row.mapState] = [utf8(gone.file), gone.state];
  if (error) return { ...row, error };
  if (!o.unit || !o.action || !gone) return { ...row, error: 'the node script ended before this container was done' };
  return { ...row, unit: o.unit, action: o.action };
}

/** One line per container: NAME UNIT ACTION LOG INODE MAP MAPSTATE (setup), NAME UNIT ACTION MAP MAPSTATE (stop). */
function formatRow(r: Row, cfg: Config, a: MonitorArgs): string {
  const who = r.target.label ?? r.target.name;
  const id = /@([0-9a-f]{12})\.service$/.exec(r.unit ?? '')?.[1];
  const log = cfg.log.target === 'file' && id ? logPath(cfg, TOOL_OF[a.type], id) : 'journal';
  if (a.json) {
    const obj: Record<string, unknown> = { container: r.target.name, unit: r.unit, action: r.action };
    if (!a.stop) Object.assign(obj, { log, id: r.id, inode: r.inode === undefined ? undefined : Number(r.inode), backend: a.backend });
    Object.assign(obj, { map: r.map, mapState: r.mapState });
    if (r.target.label) Object.assign(obj, r.target.meta);
    return `${JSON.stringify(obj)}\n`;
  }
  if (a.stop) return `${who} ${r.unit} ${r.action} ${r.map} ${r.mapState}\n`;
  return `${who} ${r.unit} ${r.action} ${log} ${r.inode} ${r.map} ${r.mapState}\n`;
}

export async function runMonitor(targets: Target[], cfg: Config, a: MonitorArgs, io: IO): Promise<number> {
  const tool = TOOL_OF[a.type];
  checkTracerConfig(cfg, tool, a.backend);
  const program = !a.stop && a.backend === 'bpftrace' ? readProgram(tool) : undefined;
  const scriptFor = (ts: Target[]) => (a.stop ? teardownScript(ts, cfg, a) : setupScript(ts, cfg, a, program));
  let started = 0;
  const code = await runBatch(targets, scriptFor, cfg, a, io, async ({ node, targets: ts, script }, io) => {
    const run = await runNodeScript({ node, script }, cfg, { deadline: a.deadline, env: io.env });
    const report = collectUnitRecords(parseRecords(run.stdout), ts.map((t) => t.key));
    const nodeName = node ?? 'localhost';
    for (const w of report.warnings) io.stderr.write(`sneakpeek: warning: ${nodeName}: ${w}\n`);
    if (a.verbose) for (const [file, state] of report.templates) io.stderr.write(`sneakpeek: ${nodeName}: ${file} ${state}\n`);
    const why = report.busy ? `${nodeName}: busy: ${report.busy}` : run.failure;
    const tally = { ok: 0, failed: 0 };
    for (const t of ts) {
      const o = report.outcomes.get(t.key);
      let row = a.stop ? teardownRow(t, o) : setupRow(t, o);
      if (row.error && why && (!o || !o.error)) row = { ...row, error: why };
      const who = t.label ?? t.name;
      for (const w of row.warnings) io.stderr.write(`sneakpeek: warning: ${who}: ${w}\n`);
      if (row.error) {
        tally.failed++;
        io.stderr.write(`sneakpeek: ${who}: ${row.error}\n`);
      } else {
        tally.ok++;
        io.stdout.write(formatRow(row, cfg, a));
        if (a.verbose && !a.stop && row.id && row.inode)
          io.stderr.write(`sneakpeek: ${who}: ${row.unit} runs ${unitCommand(cfg, tool, a.backend, row.id.slice(0, 12), row.inode).join(' ')}\n`);
      }
    }
    if (a.verbose && run.stderr.trim()) io.stderr.write(run.stderr);
    started += tally.ok;
    return tally;
  });
  if (!a.stop && !a.dryRun && started && (io.stderr as NodeJS.WriteStream).isTTY)
    io.stderr.write(`sneakpeek: tracing; follow with: sneakpeek -t ${a.type} --events --follow (and this run's selection)\n`);
  return code;
}

/** What the unit of container ID runs with this backend (-v prints it). */
export function unitCommand(cfg: Config, tool: Tool, backend: Backend, id: string, inode: string): string[] {
  return backendArgv(cfg, tool, backend, { map: mapFileOf(cfg, id), inode });
}
