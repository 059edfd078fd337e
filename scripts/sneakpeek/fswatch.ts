// sneakpeek -t fswatch [--stop [--purge]]. One node script per node (scripts/sneakpeek.sh and
// bpftool_map_container_ns.sh): sp_lock; sp_inotify (the node's limits); sp_template installs
// fswatch@.service if missing or changed; per container sp_fswatch asks the engine for the
// UpperDir and the image dirs (WATCH) and writes <envDir>/fswatch/<ID>.env; one daemon-reload;
// sp_start per container; sp_settle checks each is still up → OK. --stop: sp_cid + sp_stop.
import type { Config } from '../../lib/config.ts';
import { fswatchSpec, inotifyStep, inotifyWarnings, knownWatchStep, TOOL, watchStep } from '../../lib/fswatch-unit.ts';
import { sh } from '../../lib/quote.ts';
import type { Target } from '../../lib/targets.ts';
import { collectUnitRecords, envDirOf, extraOf, instanceIdOf, logPath, purgeStep, reloadStep, settleStep, startStep, stopStep, templateStep } from '../../lib/units.ts';
import { parseRecords, utf8 } from '../../lib/wire.ts';
import { runBatch, type BatchArgs } from '../../lib/io/batch.ts';
import type { IO } from '../../lib/io/entry.ts';
import { nodeScript } from '../../lib/io/node-files.ts';
import { runNodeScript } from '../../lib/io/runner.ts';

export interface FswatchArgs extends BatchArgs {
  stop: boolean;
  purge: boolean;
}

/** The node script for these containers (all on one node): setup, or teardown with a.stop. */
export function fswatchScript(targets: readonly Target[], cfg: Config, a: Pick<FswatchArgs, 'stop' | 'purge'>): string {
  const libs = ['get_container_ns', 'bpftool_map_container_ns', 'sneakpeek'] as const;
  if (a.stop) {
    const stop = (t: Target) =>
      t.facts
        ? stopStep(cfg, t.key, TOOL, instanceIdOf(t.facts.id))
        : sh`sp_cid ${t.key} ${t.engine ?? cfg.engine} ${t.name} && sp_stop ${t.key} ${TOOL} "$sp_cid" ${envDirOf(cfg, TOOL)}`;
    return nodeScript(cfg, libs, ['sp_lock', ...targets.map(stop), ...(a.purge ? [purgeStep(cfg, TOOL), reloadStep()] : [])]);
  }
  // The id, not the name given: -n NAME and cluster runs (full ids) must write the same file.
  const prepare = (t: Target) => (t.facts ? knownWatchStep(cfg, t.key, t.facts) : watchStep(cfg, t.key, t.engine ?? cfg.engine, t.name));
  return nodeScript(cfg, libs, [
    'sp_lock',
    inotifyStep(),
    templateStep(cfg, fswatchSpec(cfg), [cfg.paths.fswatch]),
    ...targets.map(prepare),
    reloadStep(),
    ...targets.map((t) => startStep(t.key)),
    settleStep(targets.map((t) => t.key)),
  ]);
}

const shown = (t: Target) => t.label ?? t.name;

export async function runFswatch(targets: Target[], cfg: Config, a: FswatchArgs, io: IO): Promise<number> {
  let started = 0;
  const code = await runBatch(targets, (ts) => fswatchScript(ts, cfg, a), cfg, a, io, async ({ node, targets: ts, script }, io) => {
    const nodeName = node ?? 'localhost';
    const run = await runNodeScript({ node, script }, cfg, { deadline: a.deadline, env: io.env });
    const records = parseRecords(run.stdout);
    const report = collectUnitRecords(records, ts.map((t) => t.key));
    const why = report.busy ? `${nodeName}: busy: ${report.busy}` : (run.failure ?? `${nodeName}: node script ended early`);

    // Node-level notes: inotify limits (setup), template states, warnings.
    if (!a.stop) {
      const lim = records.find((r) => r.tag === 'INOTIFY');
      const limits = lim ? { watches: Number(lim.watches || NaN), instances: Number(lim.instances || NaN) } : undefined;
      let dirs = 0;
      for (const o of report.outcomes.values()) dirs += Number(extraOf(o, 'WATCH')?.dirs ?? 0);
      for (const w of inotifyWarnings(limits, dirs, ts.length)) io.stderr.write(`sneakpeek: warning: ${nodeName}: ${w}\n`);
    }
    for (const w of report.warnings) io.stderr.write(`sneakpeek: warning: ${nodeName}: ${w}\n`);
    if (a.verbose) for (const [file, state] of report.templates) io.stderr.write(`sneakpeek: ${nodeName}: ${file} ${state}\n`);

    const tally = { ok: 0, failed: 0 };
    for (const t of ts) {
      const o = report.outcomes.get(t.key)!;
      for (const w of o.warnings) io.stderr.write(`sneakpeek: warning: ${shown(t)}: ${w}\n`);
      if (o.error || !o.unit) {
        tally.failed++;
        io.stderr.write(`sneakpeek: ${shown(t)}: ${o.error ?? why}\n`);
        continue;
      }
      tally.ok++;
      const id = /@([0-9a-f]{12})\.service$/.exec(o.unit)?.[1];
      const where = a.stop ? '' : ` ${cfg.log.target === 'file' && id ? logPath(cfg, TOOL, id) : 'journal'}`;
      io.stdout.write(`${shown(t)} ${o.unit} ${o.action}${where}\n`);
      const watch = extraOf(o, 'WATCH');
      if (a.verbose && watch) io.stderr.write(`sneakpeek: ${shown(t)}: watching ${utf8(watch.upper)} (${watch.dirs} directories now, ${watch.imageDirs} image directories as extra roots)\n`);
    }
    if (a.verbose && run.stderr.trim()) io.stderr.write(run.stderr);
    started += tally.ok;
    return tally;
  });
  if (!a.stop && !a.dryRun && started && (io.stderr as NodeJS.WriteStream).isTTY)
    io.stderr.write('sneakpeek: watching; follow with: sneakpeek -t fswatch --events --follow (and this run\'s selection)\n');
  return code;
}
