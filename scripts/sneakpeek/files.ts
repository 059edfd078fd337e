// sneakpeek -t files / -t merged_dir: plan one script per node, stream its records through
// lib/diff-stream.ts, print lines as they come.
import type { Config } from '../../lib/config.ts';
import { FilesConsumer, type OutputOptions } from '../../lib/diff-stream.ts';
import { nodeScript } from '../../lib/node-script.ts';
import { inspectFn } from '../../lib/engine-script.ts';
import { FILES_DEFS, inspectAndListStep, inspectOnlyStep, listKnownStep } from '../../lib/overlay-script.ts';
import { RecordSplitter } from '../../lib/wire.ts';
import { runNodeScript } from '../../lib/io/runner.ts';
import { engineGroups, type Target } from '../../lib/targets.ts';
import type { IO } from '../../lib/io/entry.ts';
import { nodeFailure, runBatch, type BatchArgs } from '../../lib/io/batch.ts';

export interface FilesArgs extends OutputOptions, BatchArgs {
  type: 'files' | 'merged_dir';
}

/** The script that lists (or, for merged_dir, only inspects) these containers on one node. */
export function filesScript(targets: readonly Target[], cfg: Config, a: Pick<FilesArgs, 'type' | 'all'>): string {
  const step = (t: Target) => {
    if (t.facts) return listKnownStep(t.key, t.facts, a.all);
    if (a.type === 'merged_dir') return inspectOnlyStep(t.key, t.name);
    return inspectAndListStep(t.key, t.name, a.all);
  };
  const groups = engineGroups(targets, cfg);
  if (groups.length === 1) return nodeScript([inspectFn(groups[0]!.cfg), ...FILES_DEFS], targets.map(step));
  // Several engines on one node: define sp_inspect again before each engine's containers.
  return nodeScript(FILES_DEFS, groups.flatMap((g) => [inspectFn(g.cfg), ...g.targets.map(step)]));
}

export async function runFiles(targets: Target[], cfg: Config, a: FilesArgs, io: IO): Promise<number> {
  // merged_dir from an inspect file needs no node at all.
  if (a.type === 'merged_dir' && targets.every((t) => t.facts)) {
    for (const t of targets) io.stdout.write(`${t.label ? `${t.label} ` : ''}${t.facts!.mergedDir}\n`);
    return 0;
  }
  return runBatch(targets, (ts) => filesScript(ts, cfg, a), cfg, a, io, async ({ node, targets: ts, script }) => {
    // Lines are batched per chunk of node output: one write, not one per change.
    let batch: string[] = [];
    const flush = (): boolean => {
      if (!batch.length) return true;
      const ok = io.stdout.write(Buffer.from(batch.join(''), 'latin1'));
      batch = [];
      return ok;
    };
    const consumer = new FilesConsumer(ts, a, {
      line: (text) => void batch.push(text),
      warn: (t, msg) => io.stderr.write(`sneakpeek: warning: ${t.label ?? t.name}: ${msg}\n`),
    });
    const splitter = new RecordSplitter();
    const run = await runNodeScript({ node, script }, cfg, {
      onStdout: (chunk) => {
        splitter.push(chunk, (rec) => consumer.record(rec));
        // Keep memory flat: stop reading the node while stdout's reader catches up.
        if (flush()) return;
        return new Promise<void>((resolve) => io.stdout.once('drain', () => resolve()));
      },
    });
    const results = consumer.finish(nodeFailure(run)); // the last directory's lines come out here
    flush();
    const tally = { ok: 0, failed: 0 };
    for (const r of results) {
      if (r.error) {
        tally.failed++;
        io.stderr.write(`sneakpeek: ${r.target.label ? `${r.target.label}: ` : ''}${r.error}\n`);
      } else {
        tally.ok++;
        if (a.type === 'merged_dir') io.stdout.write(`${r.target.label ? `${r.target.label} ` : ''}${r.target.facts?.mergedDir}\n`);
      }
    }
    if (a.verbose && run.stderr.trim()) io.stderr.write(run.stderr);
    return tally;
  });
}
