// Which containers a sneakpeek command works on, for every -t type:
//   -f FILE [-n NAME]   one container from saved inspect JSON (no engine call needed)
//   -n NAME [-a NODE]   one container on this host or on NODE
//   neither             every container the cluster args select (kubectl or --pods-file),
//                       labelled NODE,CONTAINERID12; -a NODE keeps that node's only
import { INPUT_LIMITS, readAll, readInputFile, type IO } from '../../lib/io/entry.ts';
import { clusterArgs, type ClusterArgs, type ClusterFlags } from '../../lib/cluster.ts';
import { resolveTargets } from '../../lib/io/discover.ts';
import type { Config } from '../../lib/config.ts';
import { UsageError } from '../../lib/errors.ts';
import { parseInspect } from '../../lib/inspect.ts';
import { checkContainerName, type Target } from '../../lib/targets.ts';

export interface SelectArgs extends ClusterFlags {
  file?: string;
  name?: string;
  /** Already checked with checkNodeAddress. */
  node?: string;
  /** -c was given on the command line: cluster runs use it instead of each pod's runtime. */
  engineForced: boolean;
  verbose: boolean;
}

export interface Selection {
  targets: Target[];
  /** Discovery problems already reported on stderr; add them to the run's failed count. */
  failed: number;
  /** True for cluster-wide runs: always end with the `N ok, M failed` line. */
  cluster: boolean;
}

const usedClusterOption = (c: ClusterArgs) =>
  c.namespace !== undefined || c.allNamespaces || c.selector !== undefined || c.podsFile !== undefined || (c.exclude?.length ?? 0) > 0 || c.running;

export async function selectTargets(a: SelectArgs, cfg: Config, io: IO, prog = 'sneakpeek'): Promise<Selection> {
  const cluster = clusterArgs(a);
  if ((a.file !== undefined || a.name !== undefined) && usedClusterOption(cluster))
    throw new UsageError('--namespace, -A, --selector, --pods-file, -e and --running apply to cluster-wide runs only (no -n, no -f)');
  if (a.file !== undefined) {
    const text = (a.file === '-'
      ? await readAll(io.stdin, INPUT_LIMITS.document, '-f - (stdin)')
      : readInputFile(a.file, INPUT_LIMITS.document, `-f ${a.file}`)).toString('utf8');
    const facts = parseInspect(text, a.name, a.file === '-' ? 'stdin' : a.file);
    // -c names the engine the document came from; else the document says (podman's or docker's)
    return { targets: [{ node: a.node, name: facts.name, key: 0, facts, engine: a.engineForced ? cfg.engine : facts.engine }], failed: 0, cluster: false };
  }
  if (a.name !== undefined) return { targets: [{ node: a.node, name: checkContainerName(a.name), key: 0, engine: cfg.engine }], failed: 0, cluster: false };
  const r = await resolveTargets(cfg, cluster, io, { engineForced: a.engineForced, node: a.node });
  if (a.verbose) for (const why of r.skipped) io.stderr.write(`${prog}: skipped ${why}\n`);
  for (const p of r.problems) io.stderr.write(`${prog}: ${p}\n`);
  if (a.verbose) io.stderr.write(`${prog}: ${r.targets.length} containers on ${new Set(r.targets.map((t) => t.node)).size} nodes\n`);
  if (!r.targets.length) io.stderr.write(`${prog}: no containers matched\n`);
  return { targets: r.targets, failed: r.problems.length, cluster: true };
}
