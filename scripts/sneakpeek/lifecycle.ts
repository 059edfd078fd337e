// sneakpeek -t fswatch|procmon|tcptracer --status | --reconcile. One node script per node
// (scripts/sneakpeek.sh's sp_lc_* with the setup and teardown functions of the other types):
//   --status     read only: every selected container's instance and, cluster-wide, every other
//                instance of the type found on the node (env files and systemd), each with what
//                the engine says of its container now and, for tracers, its map's keys. One line
//                per instance: NODE,ID UNIT STATE [what is wrong] (lib/lifecycle.ts judges).
//                Exit 0 when every one is active and current.
//   --reconcile  under the node lock: missing → started, stale → restarted (new key first),
//                orphans → stopped and removed, the rest left alone; one line per change, then
//                `N started, M restarted, K removed, J unchanged`. A node another run holds
//                (the lock, lock.wait seconds) is left for the next run: said, and exit 0.
import { checkFswatchConfig } from '../../lib/fswatch-unit.ts';
import type { Backend, Config } from '../../lib/config.ts';
import {
  changeJson, changeLine, changeWho, CHANGES, groupRecords, reconcileReport, reconcileSummary, reconcileSteps, statusJson, statusLine, statusReport,
  statusSteps, statusSummary, toolOf, type Change, type LifecycleType, type State,
} from '../../lib/lifecycle.ts';
import type { Target } from '../../lib/targets.ts';
import { checkTracerConfig, type Tool } from '../../lib/tracers.ts';
import { parseRecords } from '../../lib/wire.ts';
import { runBatch, type BatchArgs } from '../../lib/io/batch.ts';
import type { IO } from '../../lib/io/entry.ts';
import { nodeScript, readProgram } from '../../lib/io/node-files.ts';
import { runNodeScript } from '../../lib/io/runner.ts';

export interface LifecycleArgs extends BatchArgs {
  type: LifecycleType;
  mode: 'status' | 'reconcile';
  backend: Backend;
  json: boolean;
  /** Cluster-wide: every instance on each node is looked at, not only the selected containers'. */
  all: boolean;
}

const LIBS = ['get_container_ns', 'bpftool_map_container_ns', 'sneakpeek'] as const;

/** One node's script. */
export function lifecycleScript(targets: readonly Target[], cfg: Config, a: Pick<LifecycleArgs, 'type' | 'mode' | 'backend' | 'all'>, program?: string): string {
  const steps = a.mode === 'status'
    ? statusSteps(cfg, a.type, targets, a.all)
    : reconcileSteps(cfg, a.type, targets, a.all, { backend: a.backend, program });
  return nodeScript(cfg, LIBS, steps);
}

export async function runLifecycle(targets: Target[], cfg: Config, a: LifecycleArgs, io: IO): Promise<number> {
  const tool = toolOf(a.type);
  if (tool === 'fswatch') checkFswatchConfig(cfg);
  else checkTracerConfig(cfg, tool, a.backend);
  const program = a.mode === 'reconcile' && tool !== 'fswatch' && a.backend === 'bpftrace' ? readProgram(tool as Tool) : undefined;
  const states: Partial<Record<State, number>> = {};
  const changes = Object.fromEntries(CHANGES.map((c) => [c, 0])) as Record<Change, number>;
  let unreadable = 0;
  let busy = 0;
  const summary = () => (a.mode === 'status' ? statusSummary(states, unreadable) : reconcileSummary(changes, busy));

  return runBatch(targets, (ts) => lifecycleScript(ts, cfg, a, program), cfg, { ...a, cluster: true, summary }, io, async ({ node, targets: ts, script }, io) => {
    const nodeName = node ?? 'localhost';
    const run = await runNodeScript({ node, script }, cfg, { deadline: a.deadline, env: io.env });
    const g = groupRecords(parseRecords(run.stdout));
    for (const w of g.warnings) io.stderr.write(`sneakpeek: warning: ${nodeName}: ${w}\n`);
    if (a.verbose) for (const [file, state] of g.templates) io.stderr.write(`sneakpeek: ${nodeName}: ${file} ${state}\n`);
    for (const [key, k] of g.keys) for (const w of k.warnings) io.stderr.write(`sneakpeek: warning: ${nodeName},${key}: ${w}\n`);
    if (a.verbose && run.stderr.trim()) io.stderr.write(run.stderr);
    const tally = { ok: 0, failed: 0 };

    if (g.busy) {
      // Another run is changing this node: it will leave it reconciled, or the next run will.
      busy++;
      io.stderr.write(`sneakpeek: ${nodeName}: busy: ${g.busy}; nothing changed here\n`);
      return tally;
    }

    if (a.mode === 'status') {
      const report = statusReport(node, ts, g);
      for (const r of report.rows) {
        states[r.state] = (states[r.state] ?? 0) + 1;
        io.stdout.write(a.json ? statusJson(r) : statusLine(r));
        if (r.state === 'active') tally.ok++;
        else tally.failed++;
      }
      for (const [t, why] of report.errors) {
        unreadable++;
        tally.failed++;
        io.stderr.write(`sneakpeek: ${t.label ?? `${nodeName},${t.name}`}: ${why === 'no result from the node' && run.failure ? run.failure : why}\n`);
      }
      if (run.failure && !report.errors.length) {
        unreadable++;
        tally.failed++;
        io.stderr.write(`sneakpeek: ${run.failure}\n`);
      }
      return tally;
    }

    const rows = reconcileReport(node, tool, ts, g);
    let ended = false;
    for (const r of rows) {
      if (r.change === 'failed' && run.failure && r.why === 'the node script ended before this was done') {
        r.why = run.failure;
        ended = true;
      }
      changes[r.change]++;
      if (r.change === 'failed') {
        tally.failed++;
        io.stderr.write(`sneakpeek: ${changeWho(r)}: ${r.why}\n`);
      } else tally.ok++;
      if (a.json) io.stdout.write(changeJson(r));
      else if (r.change !== 'failed' && (r.change !== 'unchanged' || a.verbose)) io.stdout.write(changeLine(r));
    }
    if (run.failure && !ended) {
      changes.failed++;
      tally.failed++;
      io.stderr.write(`sneakpeek: ${run.failure}\n`);
    }
    return tally;
  });
}
