#!/usr/bin/env -S sh -c 'exec "$(dirname "$(readlink -f "$0")")/../bin/get_all_containers" "$@"'
// get_all_containers — every ready container in the cluster as NODE_IP,CONTAINER_ID lines.
// It runs nothing on a node: only `kubectl get pods -o json` here (lib/cluster.ts kubectlArgv),
// or it reads a saved pods file; lib/pods.ts picks the containers.
import { cli, wantsHelp, wantsVerbose } from '../lib/cli.ts';
import { guard, isEntry, loadConfig, processIO, runEntry, type IO } from '../lib/io/entry.ts';
import { CLUSTER_HELP, clusterArgs, clusterOptions, engineFor } from '../lib/cluster.ts';
import { discoverPods } from '../lib/io/discover.ts';
import { ENGINES } from '../lib/config.ts';
import { UsageError } from '../lib/errors.ts';
import { containerJson, containerLine, containerNameLine } from '../lib/pods.ts';

export const HELP = `get_all_containers — every ready container in the cluster as NODE_IP,CONTAINER_ID lines.

USAGE
  get_all_containers [--namespace NS | -A] [-l SELECTOR] [--pods-file FILE|-] [-e POD]... [--running] [-c ENGINE] [--transport T] [--json] [-v]

Runs \`kubectl get pods -o json\` (kubectl's current context and namespace unless told) and
prints one line per container that is ready and started: NODE_IP,CONTAINER_ID, where
NODE_IP is the pod's status.hostIP and CONTAINER_ID the first 12 characters after the
runtime prefix (docker://, containerd://, cri-o://). Statuses are matched to containers by
name: a pod with three containers gives three lines. Pods without a hostIP (pending) are
skipped. With --transport kubectl (config transport) the lines are NODE_NAME,CONTAINER_ID:
the pod's spec.nodeName, which is what -a takes then.

Init containers: classic init containers have exited before the pod runs and are never
listed; sidecar init containers (restartPolicy: Always) are listed like any container.
Ephemeral containers (kubectl debug) are never listed: they are debug sessions, not the
workload.

OPTIONS
${CLUSTER_HELP}
      --timeout S        give kubectl S seconds (config timeouts.kubectl; default 60)
      --transport T      ssh (lines start with the node's IP) | kubectl (with its name): what the other
                         tools' -a takes with that transport (config transport, SNEAKPEEK_TRANSPORT)
  -c, --engine ENGINE    docker | podman | crictl | ctr | containerd: the engine sneakpeek's tools
                         use on every node (--json's "engine"); default: the pod's runtime's
                         (docker:// → docker, containerd:// → containerd = crictl when the node
                         has it, else ctr, cri-o:// → crictl)
      --json             one JSON object a line: pod, namespace, container, node, nodeIP, runtime,
                         id (full), engine
      --config FILE      configuration (default: SNEAKPEEK_CONFIG, else sneakpeek.config.yaml);
                         paths.kubectl names the kubectl binary
  -v, --verbose          say which containers were skipped and why
  -h, --help             this text

EXAMPLES
  get_all_containers -A                                    # 10.0.0.3,4f1c2a9b7d3e …
  get_all_containers --namespace shop -l app=web -e web-0  # one app, one pod left out
  kubectl get pods -A -o json > pods.json; get_all_containers --pods-file pods.json   # air-gapped
  get_all_containers -A --json | jq -r 'select(.runtime=="containerd") | .pod'

EXIT CODES
  0 done · 1 kubectl failed or timed out, or a pod carried a value that cannot be valid (the
  others are still printed) · 2 usage or configuration error
`;

async function parse(argv: string[]) {
  return clusterOptions(await cli(argv, 'get_all_containers'))
    .option('engine', { alias: 'c', type: 'string', choices: ENGINES })
    .option('json', { type: 'boolean', default: false })
    .parseSync();
}

export async function main(argv: string[], io: IO = processIO()): Promise<number> {
  return guard(io, 'get_all_containers', wantsVerbose(argv), async () => {
    if (wantsHelp(argv)) return void io.stdout.write(HELP), 0;
    const args = await parse(argv);
    if (args.help) {
      io.stdout.write(HELP);
      return 0;
    }
    if (args._.length) throw new UsageError(`unexpected argument '${String(args._[0])}'`);
    const cfg = loadConfig(args.config, io.env, { engine: args.engine, transport: args.transport, 'timeouts.kubectl': args.timeout });
    const found = await discoverPods(cfg, clusterArgs(args), io);
    for (const c of found.containers)
      io.stdout.write(`${args.json ? containerJson(c, engineFor(c.runtime, cfg, args.engine !== undefined)) : (cfg.transport === 'kubectl' ? containerNameLine(c) : containerLine(c))}\n`);
    if (args.verbose) {
      for (const s of found.skipped) io.stderr.write(`get_all_containers: skipped ${s}\n`);
      io.stderr.write(`get_all_containers: ${found.containers.length} containers\n`);
    }
    for (const p of found.problems) io.stderr.write(`get_all_containers: ${p}\n`);
    return found.problems.length ? 1 : 0;
  });
}

if (isEntry(import.meta.url)) await runEntry(main);
