// What every sneakpeek type does with its node scripts: one script per node, printed with
// --dry-run or run on at most `concurrency` nodes at once; each type reports its own targets;
// then one summary. The rules live here once: a batch (several containers, or any
// cluster-wide run) ends with `N ok, M failed` on stderr; a single container's failure is
// its one error line; the exit code is 1 when anything failed.
import type { IO } from './entry.ts';
import type { Config } from '../config.ts';
import { lastLine, pool, type NodeRun } from './runner.ts';
import { byNode, summary, type Target } from '../targets.ts';

export interface BatchArgs {
  dryRun: boolean;
  verbose: boolean;
  /** Cluster-wide run: always end with the summary line. */
  cluster?: boolean;
  /** Containers discovery already reported as failed (counted in the summary). */
  failedBefore?: number;
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

/** Why a whole node failed, in one line: ssh's or the script's last word. */
export function nodeFailure(run: NodeRun): string | undefined {
  if (run.code === 0) return undefined;
  return `${run.node ?? 'localhost'}: ${lastLine(run.stderr) || `node script exited ${run.code}`}`;
}

/**
 * Plan every node's script first (a planning error stops the run before any node is touched),
 * then print or run them; `perNode` runs one job and reports its targets. Returns the exit code.
 */
export async function runBatch(
  targets: readonly Target[],
  scriptFor: (targets: Target[]) => string,
  cfg: Config,
  a: BatchArgs,
  io: IO,
  perNode: (job: NodeJob) => Promise<NodeTally>,
): Promise<number> {
  const jobs: NodeJob[] = [...byNode(targets)].map(([node, ts]) => ({ node, targets: ts, script: scriptFor(ts) }));
  if (a.dryRun) {
    for (const j of jobs) io.stdout.write(`# node: ${j.node ?? 'localhost'}\n${j.script}\n`);
    return 0;
  }
  let ok = 0;
  let failed = a.failedBefore ?? 0;
  await pool(jobs, cfg.concurrency, async (job) => {
    const t = await perNode(job);
    ok += t.ok;
    failed += t.failed;
  });
  if (targets.length > 1 || a.cluster) io.stderr.write(`${summary(ok, failed)}\n`);
  return failed ? 1 : 0;
}
