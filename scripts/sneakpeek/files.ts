// sneakpeek -t files / -t merged_dir. On each node (scripts/sneakpeek.sh): sp_list asks the
// engine (sp_inspect → FACTS) and lists what the diff needs of the container's layers (sp_layers:
// the UpperDir whole, of the image only the directories the UpperDir has too; find -printf,
// getfattr, sort → X, R, F records, then DONE) — or, with --all, its whole merged view (sp_merged → M);
// a container read from an inspect file is listed without the engine. The diff is computed here
// (lib/diff.ts through lib/diff-stream.ts) while the listing streams in; lines go out as they come.
import type { Config } from '../../lib/config.ts';
import { FilesConsumer, type OutputOptions } from '../../lib/diff-stream.ts';
import { sh } from '../../lib/quote.ts';
import { RecordSplitter } from '../../lib/wire.ts';
import type { Target } from '../../lib/targets.ts';
import { runBatch, type BatchArgs } from '../../lib/io/batch.ts';
import type { IO } from '../../lib/io/entry.ts';
import { nodeScript } from '../../lib/io/node-files.ts';
import { runNodeScript } from '../../lib/io/runner.ts';

export interface FilesArgs extends OutputOptions, BatchArgs {
  type: 'files' | 'merged_dir';
}

/** One container's step on its node. */
function listStep(t: Target, cfg: Config, a: Pick<FilesArgs, 'type' | 'all'>): string {
  const f = t.facts;
  if (f) return a.all ? sh`sp_merged ${t.key} ${f.mergedDir} && rec DONE ${t.key}` : sh`sp_layers ${t.key} ${f.upperDir} ${f.lowerDirs.join(':')} && rec DONE ${t.key}`;
  if (a.type === 'merged_dir') return sh`sp_mergedroot ${t.key} ${t.engine ?? cfg.engine} ${t.name} && rec DONE ${t.key}`;
  return sh`sp_list ${t.key} ${t.engine ?? cfg.engine} ${t.name} ${a.all ? 1 : 0}`;
}

/** The script that lists (or, for merged_dir, only inspects) these containers on one node. */
export function filesScript(targets: readonly Target[], cfg: Config, a: Pick<FilesArgs, 'type' | 'all'>): string {
  return nodeScript(cfg, ['get_container_ns', 'sneakpeek'], targets.map((t) => listStep(t, cfg, a)));
}

export async function runFiles(targets: Target[], cfg: Config, a: FilesArgs, io: IO): Promise<number> {
  // merged_dir from an inspect file needs no node at all.
  if (a.type === 'merged_dir' && targets.every((t) => t.facts)) {
    for (const t of targets) io.stdout.write(`${t.label ? `${t.label} ` : ''}${t.facts!.mergedDir}\n`);
    return 0;
  }
  return runBatch(targets, (ts) => filesScript(ts, cfg, a), cfg, a, io, async ({ node, targets: ts, script }, io) => {
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
      deadline: a.deadline,
      env: io.env,
      onStdout: (chunk) => {
        splitter.push(chunk, (rec) => consumer.record(rec));
        // Keep memory flat: stop reading the node while stdout's reader catches up.
        if (flush()) return;
        return new Promise<void>((resolve) => io.stdout.once('drain', () => resolve()));
      },
    });
    const results = consumer.finish(run.failure); // the last directory's lines come out here
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
