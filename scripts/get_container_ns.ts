#!/usr/bin/env -S sh -c 'exec "$(dirname "$(readlink -f "$0")")/../bin/get_container_ns" "$@"'
// get_container_ns — the mount-namespace inode of a container's main process, on a node.
// On the node it runs scripts/get_container_ns.sh's sp_ns: the engine's inspect (docker/podman
// `inspect --format '{{.Id}} {{.State.Status}} {{.State.Pid}} …'`, `crictl inspect`, or
// `ctr tasks ls`), then
// `stat -Lc %i /proc/PID/ns/mnt`; one NS record comes back.
import { cli, wantsHelp, wantsVerbose } from '../lib/cli.ts';
import { ENGINES } from '../lib/config.ts';
import { OpError, UsageError } from '../lib/errors.ts';
import { sh } from '../lib/quote.ts';
import { checkContainerName, checkNode } from '../lib/targets.ts';
import { parseRecords, utf8 } from '../lib/wire.ts';
import { guard, isEntry, loadConfig, processIO, runEntry, type IO } from '../lib/io/entry.ts';
import { nodeScript } from '../lib/io/node-files.ts';
import { runNodeScript, transportNote } from '../lib/io/runner.ts';

export const HELP = `get_container_ns — the mount-namespace inode of a container's main process, on a node.

USAGE
  get_container_ns [-a NODE] -n CONTAINER [-u USER] [-c ENGINE] [--transport T] [--timeout S] [-v] [--dry-run]

Prints the inode of /proc/PID/ns/mnt (followed, like stat -L) of the container's main
process: the key BCC's --mntnsmap filters on (see bpftool_map_container_ns). The engine
finds PID: docker/podman inspect .State.Pid, crictl inspect .info.pid (containerd, CRI-O),
ctr tasks ls (containerd without crictl). One ssh session to NODE (none without -a, or when
NODE is this host); privileged steps run with sudo -n. A paused container has its process
and namespace: its inode is printed. A stopped container, or an inode that is empty or 0, is
an error — never a number that would make an empty filter.

OPTIONS
  -a, --address NODE     the node (hostname or IP; its node name with --transport kubectl; default: this host)
  -n, --name CONTAINER   container name or id (a 12-character id from get_all_containers works)
  -u, --user USER        ssh user (config ssh.user; default vagrant)
  -c, --engine ENGINE    docker | podman | crictl | ctr | containerd (config engine; containerd =
                         crictl when the node has it, else ctr)
      --timeout S        give the node S seconds (config timeouts.lookup; default 60)
      --dry-run          print the node script instead of running it
      --transport T      how scripts reach -a NODE: ssh (NODE = host name or IP) | kubectl (NODE = node
                         name: one privileged pod on it per command); config transport, SNEAKPEEK_TRANSPORT
      --config FILE      configuration (default: SNEAKPEEK_CONFIG, else sneakpeek.config.yaml)
  -v, --verbose          also print the full container id and pid on stderr
  -h, --help             this text

EXAMPLES
  get_container_ns -n web                                 # this host: 4026532178
  get_container_ns -a 10.0.0.3 -n 4f1c2a9b7d3e            # over ssh, one session
  get_container_ns --transport kubectl -a node-a -n 4f1c2a9b7d3e   # through a pod on node-a, no ssh
  get_all_containers | while IFS=, read -r node id; do
    echo "$node $id $(get_container_ns -a "$node" -n "$id")"; done

EXIT CODES
  0 printed the inode · 1 the node or the container failed (unknown, not running, ssh, sudo,
  timed out) · 2 usage or configuration error
`;

export async function main(argv: string[], io: IO = processIO()): Promise<number> {
  return guard(io, 'get_container_ns', wantsVerbose(argv), async () => {
    if (wantsHelp(argv)) return void io.stdout.write(HELP), 0;
    const args = (await cli(argv, 'get_container_ns'))
      .option('address', { alias: 'a', type: 'string' })
      .option('name', { alias: 'n', type: 'string' })
      .option('user', { alias: 'u', type: 'string' })
      .option('engine', { alias: 'c', type: 'string', choices: ENGINES })
      .option('dry-run', { type: 'boolean', default: false })
      .parseSync();
    if (args.help) return void io.stdout.write(HELP), 0;
    if (args._.length) throw new UsageError(`unexpected argument '${String(args._[0])}'`);
    if (args.name === undefined) throw new UsageError('missing -n CONTAINER');
    const name = checkContainerName(args.name);
    const cfg = loadConfig(args.config, io.env, { 'ssh.user': args.user, engine: args.engine, transport: args.transport, 'timeouts.lookup': args.timeout });
    const node = args.address === undefined ? undefined : checkNode(args.address, cfg.transport);
    const where = node ?? 'localhost';

    // On the node: ask the engine, stat the mount namespace → NS KEY ID PID INODE (or ERR).
    const script = nodeScript(cfg, ['get_container_ns'], [sh`sp_ns 0 ${cfg.engine} ${name}`]);
    if (args['dry-run']) return void io.stdout.write(`# node: ${where}\n${transportNote(node, cfg, cfg.timeouts.lookup)}${script}\n`), 0;
    const run = await runNodeScript({ node, script }, cfg, { deadline: cfg.timeouts.lookup, env: io.env });

    for (const r of parseRecords(run.stdout)) {
      if (r.tag === 'NS' && /^[1-9]\d*$/.test(r.inode)) {
        if (args.verbose) io.stderr.write(`get_container_ns: ${where}: ${name}: id ${r.id}, pid ${r.pid}\n`);
        io.stdout.write(`${r.inode}\n`);
        return 0;
      }
      if (r.tag === 'ERR') throw new OpError(`${where}: ${name}: ${utf8(r.message)}`);
    }
    throw new OpError(run.failure ?? `${where}: the node script ended without an answer`);
  });
}

if (isEntry(import.meta.url)) await runEntry(main);
