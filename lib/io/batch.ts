// What every sneakpeek type does with its node scripts: one script per node, printed with
// --dry-run or run on at most `concurrency` nodes at once, each within its deadline; each type
// reports its own targets; then one summary. The rules live here once: a batch (several
// containers, or any cluster-wide run) ends with `N ok, M failed` on stderr; a single
// container's failure is its one error line; the exit code is 1 when anything failed, and
// 130 / 143 when Ctrl-C or SIGTERM ended the run (every node's processes ended with it).
import { Writable } from 'node:stream';
import type { Config } from '../config.ts';
import { byNode, summary, type Target } from '../targets.ts';
import type { IO } from './entry.ts';
import { interruptedBy, signalExitCode } from './interrupt.ts';
import { progressOn } from './progress.ts';
import { pool, transportNote } from './runner.ts';

export interface BatchArgs {
  dryRun: boolean;
  verbose: boolean;
  /** No progress line even on a terminal (-q). */
  quiet?: boolean;
  /** Cluster-wide run: always end with the summary line. */
  cluster?: boolean;
  /** Containers discovery already reported as failed (counted in the summary). */
  failedBefore?: number;
  /** Seconds each node may take (config timeouts.<job>, or --timeout). */
  deadline: number;
  /** Nodes that get a script even with no target on them (--status/--reconcile -a NODE: orphans). */
  nodes?: (string | undefined)[];
  /** The summary line instead of `N ok, M failed` (called once, after every node). */
  summary?: () => string;
}

export interface NodeJob {
  node: string | undefined;
  targets: Target[];
  script: string;
}

export interface NodeTally {
  ok: number;
  failed: number;
}

/**
 * Plan every node's script first (a planning error stops the run before any node is touched),
 * then print or run them; `perNode` runs one job and reports its targets, writing its stderr
 * lines through the `io` it is given (they step around the progress line). Returns the exit code.
 */
export async function runBatch(
  targets: readonly Target[],
  scriptFor: (targets: Target[]) => string,
  cfg: Config,
  a: BatchArgs,
  io: IO,
  perNode: (job: NodeJob, io: IO) => Promise<NodeTally>,
): Promise<number> {
  const groups = byNode(targets);
  for (const n of a.nodes ?? []) if (!groups.has(n)) groups.set(n, []);
  const jobs: NodeJob[] = [...groups].map(([node, ts]) => ({ node, targets: ts, script: scriptFor(ts) }));
  if (a.dryRun) {
    for (const j of jobs) io.stdout.write(`# node: ${j.node ?? 'localhost'}\n${transportNote(j.node, cfg, a.deadline)}${j.script}\n`);
    return 0;
  }
  const progress = progressOn(io.stderr, io.env, jobs.length, a.quiet ?? false);
  const stderr = new Writable({
    write(chunk: Buffer, _enc, cb) {
      progress.say(chunk.toString('utf8'));
      cb();
    },
  });
  const nodeIO: IO = { ...io, stderr };
  let ok = 0;
  let failed = a.failedBefore ?? 0;
  try {
    await pool(jobs, cfg.concurrency, async (job) => {
      const t = await perNode(job, nodeIO);
      ok += t.ok;
      failed += t.failed;
      progress.done(t.failed > 0);
    });
  } finally {
    progress.end();
  }
  const sig = interruptedBy();
  if (targets.length > 1 || a.cluster || sig) io.stderr.write(`${sig ? `interrupted (${sig}): ` : ''}${a.summary ? a.summary() : summary(ok, failed)}\n`);
  if (sig) return signalExitCode(sig);
  return failed ? 1 : 0;
}
