// Cluster discovery: kubectl (through the runner) or a saved pods file → containers
// (lib/pods.ts) → targets (lib/cluster.ts), one per container, grouped later by node.
import type { Config } from '../config.ts';
import { checkClusterArgs, forTransport, kubectlArgv, podTargets, type ClusterArgs } from '../cluster.ts';
import { OpError, UsageError } from '../errors.ts';
import { parsePodsJson, podContainers, type PodsResult } from '../pods.ts';
import type { Target } from '../targets.ts';
import { INPUT_LIMITS, readAll, readInputFile, type IO } from './entry.ts';
import { lastLine, runCommand } from './runner.ts';

/** The pods to look at: kubectl's answer, or the saved file (filtered here the way kubectl would). */
export async function discoverPods(cfg: Config, a: ClusterArgs, io: IO): Promise<PodsResult> {
  checkClusterArgs(a);
  const filter = { exclude: a.exclude, running: a.running };
  if (a.podsFile !== undefined) {
    const source = a.podsFile === '-' ? 'stdin' : a.podsFile;
    const text = (a.podsFile === '-'
      ? await readAll(io.stdin, INPUT_LIMITS.document, '--pods-file - (stdin)')
      : readInputFile(a.podsFile, INPUT_LIMITS.document, `--pods-file ${a.podsFile}`)).toString('utf8');
    const ns = a.allNamespaces ? undefined : a.namespace;
    return forTransport(podContainers(parsePodsJson(text, source), { ...filter, namespace: ns, selector: a.selector }), cfg);
  }
  const argv = kubectlArgv(cfg, a);
  // kubectl's answer is capped like a pods file; its deadline is config timeouts.kubectl.
  const r = await runCommand(argv, { env: { ...process.env, ...io.env }, deadline: cfg.timeouts.kubectl, maxBytes: INPUT_LIMITS.document });
  if (r.timedOut) throw new OpError(`kubectl get pods: timed out after ${cfg.timeouts.kubectl}s (config timeouts.kubectl)`);
  if (r.code === 127) throw new OpError(`${argv[0]}: not found (set paths.kubectl in the config)`);
  if (r.code !== 0) throw new OpError(`kubectl get pods failed: ${lastLine(r.stderr) || `exit ${r.code}`}`);
  try {
    return forTransport(podContainers(parsePodsJson(r.stdout, 'kubectl get pods'), filter), cfg);
  } catch (err) {
    // kubectl answered with something else (a proxy's page, the wrong binary): the operation failed.
    throw err instanceof UsageError ? new OpError(err.message) : err;
  }
}

export interface ResolveOptions {
  /** -c ENGINE was given: use it on every node instead of the pod's runtime. */
  engineForced: boolean;
  /** Only this node's containers (-a NODE without -n). */
  node?: string;
}

export interface Resolved {
  targets: Target[];
  /** Values that cannot be valid (a bad hostIP or container id in the pod list): one line each. */
  problems: string[];
  /** Pods and containers left out, and why (for -v). */
  skipped: string[];
}

/** Every container the cluster args select, as targets; the caller reports problems and skips. */
export async function resolveTargets(cfg: Config, a: ClusterArgs, io: IO, o: ResolveOptions): Promise<Resolved> {
  const found = await discoverPods(cfg, a, io);
  let containers = found.containers;
  if (o.node !== undefined) containers = containers.filter((c) => c.nodeIP === o.node || c.nodeName === o.node);
  return { targets: podTargets(containers, cfg, o.engineForced), problems: found.problems, skipped: found.skipped };
}
