// sneakpeek -t fswatch [--stop [--purge]]: one node script per node installs fswatch@.service
// (if missing or changed), writes each container's env file, reloads systemd once, starts
// every instance, and reports one line per container. --stop tears the instances down.
import type { IO } from '../../lib/io/entry.ts';
import type { Config } from '../../lib/config.ts';
import { cidFn, inspectFn } from '../../lib/engine-script.ts';
import { ENV_CONTAINER, ENV_IMAGE_DIRS, ENV_WATCH_DIR, fswatchSpec, INOTIFY_STEP, inotifyWarnings, TOOL, WATCH_FN, watchStep } from '../../lib/fswatch-unit.ts';
import { nodeScript } from '../../lib/node-script.ts';
import { shQuote } from '../../lib/quote.ts';
import { RecordSplitter, splitFields, utf8 } from '../../lib/wire.ts';
import { runNodeScript } from '../../lib/io/runner.ts';
import { engineGroups, type Target } from '../../lib/targets.ts';
import {
  collectUnitRecords, instanceIdOf, instanceStep, logPath, purgeStep, reloadStep, settleStep, startStep, stopStep, templateStep, unitDefs,
} from '../../lib/units.ts';
import { nodeFailure, runBatch, type BatchArgs } from '../../lib/io/batch.ts';

export interface FswatchArgs extends BatchArgs {
  stop: boolean;
  purge: boolean;
}

/** Step: the facts of a container read from an inspect file (-f): no engine call on the node. */
function knownFactsStep(t: Target, imageDirs: number): string {
  const f = t.facts!;
  return `sp_driver=${shQuote(f.driver)} sp_upper=${shQuote(f.upperDir)} sp_lower=${shQuote(f.lowerDirs.join(':'))} sp_cid=${shQuote(instanceIdOf(f.id))}
sp_fswatch_dirs ${t.key} ${imageDirs}`;
}

/** The node script for these containers (all on one node): setup, or teardown with a.stop. */
export function fswatchScript(targets: readonly Target[], cfg: Config, a: Pick<FswatchArgs, 'stop' | 'purge'>): string {
  const spec = fswatchSpec(cfg);
  // A node may run several engines (cluster runs follow each pod's runtime): define the
  // engine functions again before each engine's containers; still one script, one session.
  const groups = engineGroups(targets, cfg);
  const engineDefs = (g: { cfg: Config }) => (targets.every((t) => t.facts) ? [] : [inspectFn(g.cfg), cidFn(g.cfg)]);
  if (a.stop) {
    const stop = (t: Target) =>
      t.facts
        ? stopStep(cfg, t.key, TOOL, instanceIdOf(t.facts.id))
        : `if sp_cid ${t.key} ${shQuote(t.name)}; then ${stopStep(cfg, t.key, TOOL, { shVar: 'sp_cid' })}; fi`;
    const steps = groups.flatMap((g) => [...engineDefs(g), ...g.targets.map(stop)]);
    if (a.purge) steps.push(purgeStep(cfg, TOOL), reloadStep());
    return nodeScript(unitDefs(), steps);
  }
  const prepare = (t: Target) => {
    // The id, not the name given: -n NAME and cluster runs (full ids) must write the same file.
    const env = instanceStep(cfg, t.key, TOOL, { shVar: 'sp_cid' }, {
      [ENV_CONTAINER]: { shVar: 'sp_cid' },
      [ENV_WATCH_DIR]: { shVar: 'sp_upper' },
      [ENV_IMAGE_DIRS]: { shVar: 'sp_imgdirs' },
    });
    const find = t.facts ? knownFactsStep(t, cfg.fswatch.imageDirs) : watchStep(t.key, t.name, cfg.fswatch.imageDirs);
    return `if ${find}; then ${env}; fi`;
  };
  return nodeScript(
    [...unitDefs(), WATCH_FN],
    [
      INOTIFY_STEP,
      templateStep(cfg, spec, [cfg.paths.fswatch]),
      ...groups.flatMap((g) => [...engineDefs(g), ...g.targets.map(prepare)]),
      reloadStep(),
      ...targets.map((t) => startStep(t.key)),
      settleStep(targets.map((t) => t.key)),
    ],
  );
}

const shown = (t: Target) => t.label ?? t.name;

export async function runFswatch(targets: Target[], cfg: Config, a: FswatchArgs, io: IO): Promise<number> {
  let started = 0;
  const code = await runBatch(targets, (ts) => fswatchScript(ts, cfg, a), cfg, a, io, async ({ node, targets: ts, script }) => {
    const nodeName = node ?? 'localhost';
    const records: string[][] = [];
    const splitter = new RecordSplitter();
    const run = await runNodeScript({ node, script }, cfg, {
      onStdout: (chunk) => splitter.push(chunk, (rec) => records.push(splitFields(rec).map(utf8))),
    });
    const report = collectUnitRecords(records, ts.map((t) => t.key));
    const why = nodeFailure(run) ?? `${nodeName}: node script ended early`;

    // Node-level notes: inotify limits (setup), template states, warnings.
    if (!a.stop) {
      const lim = records.find((r) => r[0] === 'INOTIFY');
      const limits = lim ? { watches: Number(lim[2] || NaN), instances: Number(lim[3] || NaN) } : undefined;
      let dirs = 0;
      for (const o of report.outcomes.values()) dirs += Number(o.extra.get('WATCH')?.[0]?.[1] ?? 0);
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
      const watch = o.extra.get('WATCH')?.[0];
      if (a.verbose && watch) io.stderr.write(`sneakpeek: ${shown(t)}: watching ${watch[0]} (${watch[1]} directories now, ${watch[2]} image directories as extra roots)\n`);
    }
    if (a.verbose && run.stderr.trim()) io.stderr.write(run.stderr);
    started += tally.ok;
    return tally;
  });
  if (!a.stop && !a.dryRun && started && (io.stderr as NodeJS.WriteStream).isTTY)
    io.stderr.write(
      cfg.log.target === 'file'
        ? `sneakpeek: watching; follow with: tail -F ${cfg.log.dir}/${TOOL}-*.log\n`
        : `sneakpeek: watching; follow with: journalctl -f -u '${TOOL}@*'\n`,
    );
  return code;
}
