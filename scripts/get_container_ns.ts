#!/usr/bin/env -S npx tsx
// get_container_ns — the mount-namespace inode of a container's main process, on a node.
//
// USAGE
//   get_container_ns [-a NODE] -n CONTAINER [-u USER] [-c ENGINE] [-v] [--dry-run]
//
// EXAMPLES
//   get_container_ns -n web                                 # this host: 4026532178
//   get_container_ns -a 10.0.0.3 -n 4f1c2a9b7d3e            # over ssh, one session
//   get_all_containers | while IFS=, read -r node id; do
//     echo "$node $id $(get_container_ns -a "$node" -n "$id")"; done
//
// EXIT CODES
//   0 printed the inode · 1 the node or the container failed (unknown, not running, ssh, sudo)
//   · 2 usage or configuration error
import { cli, wantsVerbose } from '../lib/cli.ts';
import { guard, isEntry, loadConfig, processIO, runEntry, type IO } from '../lib/io/entry.ts';
import { ENGINES } from '../lib/config.ts';
import { nsFn } from '../lib/engine-script.ts';
import { OpError, UsageError } from '../lib/errors.ts';
import { nodeScript } from '../lib/node-script.ts';
import { shQuote } from '../lib/quote.ts';
import { RecordSplitter, splitFields, utf8 } from '../lib/wire.ts';
import { checkNodeAddress, lastLine, runNodeScript } from '../lib/io/runner.ts';
import { checkContainerName } from '../lib/targets.ts';

export const HELP = `get_container_ns — the mount-namespace inode of a container's main process, on a node.

USAGE
  get_container_ns [-a NODE] -n CONTAINER [-u USER] [-c ENGINE] [-v] [--dry-run]

Prints the inode of /proc/PID/ns/mnt (followed, like stat -L) of the container's main
process: the key BCC's --mntnsmap filters on (see bpftool_map_container_ns). The engine
finds PID: docker/podman inspect .State.Pid, crictl inspect .info.pid (containerd, CRI-O).
One ssh session to NODE (none without -a, or when NODE is this host); privileged steps run
with sudo -n. A stopped container, or an inode that is empty or 0, is an error — never a
number that would make an empty filter.

OPTIONS
  -a, --address NODE     the node (hostname or IP; default: this host)
  -n, --name CONTAINER   container name or id (a 12-character id from get_all_containers works)
  -u, --user USER        ssh user (config ssh.user; default vagrant)
  -c, --engine ENGINE    docker | podman | crictl (config engine)
      --dry-run          print the node script instead of running it
      --config FILE      configuration (default: SNEAKPEEK_CONFIG, else sneakpeek.config.yaml)
  -v, --verbose          also print the full container id and pid on stderr
  -h, --help             this text

EXAMPLES
  get_container_ns -n web                                 # this host: 4026532178
  get_container_ns -a 10.0.0.3 -n 4f1c2a9b7d3e            # over ssh, one session
  get_all_containers | while IFS=, read -r node id; do
    echo "$node $id $(get_container_ns -a "$node" -n "$id")"; done

EXIT CODES
  0 printed the inode · 1 the node or the container failed (unknown, not running, ssh, sudo)
  · 2 usage or configuration error
`;

function parse(argv: string[]) {
  return cli(argv, 'get_container_ns')
    .option('address', { alias: 'a', type: 'string' })
    .option('name', { alias: 'n', type: 'string' })
    .option('user', { alias: 'u', type: 'string' })
    .option('engine', { alias: 'c', type: 'string', choices: ENGINES })
    .option('dry-run', { type: 'boolean', default: false })
    .parseSync();
}

export async function main(argv: string[], io: IO = processIO()): Promise<number> {
  return guard(io, 'get_container_ns', wantsVerbose(argv), async () => {
    const args = parse(argv);
    if (args.help) {
      io.stdout.write(HELP);
      return 0;
    }
    if (args._.length) throw new UsageError(`unexpected argument '${String(args._[0])}'`);
    if (args.name === undefined) throw new UsageError('missing -n CONTAINER');
    const name = checkContainerName(args.name);
    const node = args.address === undefined ? undefined : checkNodeAddress(args.address);
    const cfg = loadConfig(args.config, io.env, { 'ssh.user': args.user, engine: args.engine });
    const script = nodeScript([nsFn(cfg)], [`sp_ns 0 ${shQuote(name)}`]);
    if (args['dry-run']) {
      io.stdout.write(`# node: ${node ?? 'localhost'}\n${script}\n`);
      return 0;
    }
    const run = await runNodeScript({ node, script }, cfg);
    const where = node ?? 'localhost';
    let inode: string | undefined;
    let error: string | undefined;
    new RecordSplitter().push(run.stdout, (rec) => {
      const f = splitFields(rec);
      if (f[0] === 'NS') {
        inode = f[4];
        if (args.verbose) io.stderr.write(`get_container_ns: ${where}: ${name}: id ${f[2]}, pid ${f[3]}\n`);
      } else if (f[0] === 'ERR') error = utf8(f.slice(2).join(' '));
    });
    if (inode !== undefined && /^[1-9]\d*$/.test(inode)) {
      io.stdout.write(`${inode}\n`);
      return 0;
    }
    if (error) throw new OpError(`${where}: ${name}: ${error}`);
    throw new OpError(`${where}: ${lastLine(run.stderr) || `node script exited ${run.code} without an answer`}`);
  });
}

if (isEntry(import.meta.url)) await runEntry(main);
