// The cluster discovery options every tool shares, the kubectl command they make, and pod
// containers → targets (pure; lib/io/discover.ts runs kubectl or reads the pods file).
//
// Tools add the options with `clusterOptions(yargs)` and call `resolveTargets(...)` when no
// -n/-f names a single container:
//   --namespace NS | -A, --selector SEL, --pods-file FILE|-, -e POD (repeatable), --running
// The engine on each node follows the pod's runtime (docker:// → docker, containerd:// →
// containerd: crictl when the node has it, else ctr; cri-o:// → crictl) unless -c ENGINE forces one.
import type { Argv } from 'yargs';
import type { Config, Engine } from './config.ts';
import { UsageError } from './errors.ts';
import { checkNamespace, checkPodExclusion, checkSelector, type PodContainer, type PodsResult } from './pods.ts';
import { lastLine, runCommand } from './io/runner.ts';
import { checkNodeAddress, checkNodeName, isNodeName } from './targets.ts';
import type { Target } from './targets.ts';

export interface ClusterArgs {
  namespace?: string;
  allNamespaces?: boolean;
  selector?: string;
  podsFile?: string;
  exclude?: string[];
  running?: boolean;
}

/** The discovery options, same spelling in every tool. */
export function clusterOptions<T>(y: Argv<T>) {
  return y
    .option('namespace', { type: 'string', nargs: 1 })
    .option('all-namespaces', { alias: 'A', type: 'boolean', default: false })
    .option('selector', { alias: 'l', type: 'string', nargs: 1 })
    // nargs 1: `--pods-file -` is stdin, not a positional '-'.
    .option('pods-file', { type: 'string', nargs: 1 })
    .option('exclude', { alias: 'e', type: 'string', array: true, nargs: 1 })
    .option('running', { type: 'boolean', default: false });
}

/** Help text lines for the options above, for each tool's HELP. */
export const CLUSTER_HELP = `      --namespace NS     pods of namespace NS (default: kubectl's current namespace; with
                         --pods-file, every pod in the file)
  -A, --all-namespaces   pods of every namespace
  -l, --selector SEL     only pods matching the label selector (kubectl's -l)
      --pods-file FILE   read saved \`kubectl get pods -o json\` output from FILE ('-' = stdin); no kubectl:
                         the file is what you chose to save, listed whole unless --namespace or -l
  -e, --exclude POD      leave out pod POD (full name, or NAMESPACE/POD; repeatable)
      --running          every running container, ready or not (default: ready and started)`;

/** The discovery options as yargs parses them (camel-cased). */
export interface ClusterFlags {
  namespace?: string;
  allNamespaces?: boolean;
  selector?: string;
  podsFile?: string;
  exclude?: (string | number)[];
  running?: boolean;
}

/** The parsed args in the shape ClusterArgs wants (yargs camel-cases for us; this just picks). */
export function clusterArgs(a: ClusterFlags): ClusterArgs {
  return {
    namespace: a.namespace,
    allNamespaces: a.allNamespaces,
    selector: a.selector,
    podsFile: a.podsFile,
    exclude: a.exclude?.map(String),
    running: a.running,
  };
}

/** Validate every value before anything runs. */
export function checkClusterArgs(a: ClusterArgs): void {
  if (a.namespace !== undefined) checkNamespace(a.namespace);
  if (a.namespace !== undefined && a.allNamespaces) throw new UsageError('--namespace and -A exclude each other');
  if (a.selector !== undefined) checkSelector(a.selector);
  for (const e of a.exclude ?? []) checkPodExclusion(e);
}

/** The kubectl argv for these args. Pure. `=` forms: a value can never be read as an option. */
export function kubectlArgv(cfg: Config, a: ClusterArgs): string[] {
  const argv = [cfg.paths.kubectl, 'get', 'pods', '--output=json'];
  if (a.allNamespaces) argv.push('--all-namespaces');
  else if (a.namespace !== undefined) argv.push(`--namespace=${checkNamespace(a.namespace)}`);
  if (a.selector !== undefined) argv.push(`--selector=${checkSelector(a.selector)}`);
  return argv;
}


/**
 * Transport kubectl reaches a node by its name: a container whose pod has no valid
 * spec.nodeName (a trimmed saved file) is a problem line, not a target. Pure.
 */
export function forTransport(found: PodsResult, cfg: Config): PodsResult {
  if (cfg.transport !== 'kubectl') return found;
  const out: PodsResult = { ...found, containers: [], problems: [...found.problems] };
  for (const c of found.containers) {
    if (isNodeName(c.nodeName)) out.containers.push(c);
    else out.problems.push(`pod ${c.namespace}/${c.pod} container ${c.container}: ${c.nodeName ? `invalid spec.nodeName ${JSON.stringify(c.nodeName)}` : 'no spec.nodeName'}: transport kubectl reaches nodes by name`);
  }
  return out;
}

// containerd: crictl when the node has it, else ctr (decided on the node: scripts/get_container_ns.sh sp_facts).
const RUNTIME_ENGINES: Record<string, Engine> = { docker: 'docker', containerd: 'containerd', 'cri-o': 'crictl' };

/** The engine that knows a pod's container on its node: the runtime's, unless one is forced. */
export function engineFor(runtime: string, cfg: Config, forced: boolean): Engine {
  return forced ? cfg.engine : (RUNTIME_ENGINES[runtime] ?? cfg.engine);
}

/**
 * One target per container; key = index; label NODE,CONTAINERID12 as the original prints it.
 * NODE is how the transport reaches the node: its hostIP over ssh, its name with kubectl.
 */
export function podTargets(containers: readonly PodContainer[], cfg: Config, engineForced: boolean): Target[] {
  const byName = cfg.transport === 'kubectl';
  return containers.map((c, key) => ({
    node: byName ? checkNodeName(c.nodeName) : checkNodeAddress(c.nodeIP),
    name: c.id,
    key,
    label: `${byName ? c.nodeName : c.nodeIP},${c.shortId}`,
    engine: engineFor(c.runtime, cfg, engineForced),
    meta: { pod: c.pod, namespace: c.namespace, container: c.container, node: c.nodeName, nodeIP: c.nodeIP, id: c.id },
  }));
}
