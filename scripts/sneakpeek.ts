#!/usr/bin/env -S sh -c 'exec "$(dirname "$(readlink -f "$0")")/../bin/sneakpeek" "$@"'
// sneakpeek — spy on containers: what they changed on disk, run, connect to and write.
// What it runs on a node is in scripts/sneakpeek.sh (with get_container_ns.sh and
// bpftool_map_container_ns.sh); what each -t type does with it, in scripts/sneakpeek/<type>.ts.
import { cli, wantsHelp, wantsVerbose } from '../lib/cli.ts';
import { CLUSTER_HELP, clusterOptions } from '../lib/cluster.ts';
import type { Job } from '../lib/config.ts';
import { UsageError } from '../lib/errors.ts';
import { checkNode } from '../lib/targets.ts';
import { guard, isEntry, loadConfig, processIO, runEntry, type IO } from '../lib/io/entry.ts';
import { selectTargets } from './sneakpeek/select.ts';

export const HELP = `sneakpeek — spy on containers: what they changed on disk, run, connect to and write.

USAGE
  sneakpeek -t files      [-f INSPECT.json|-] [-n CONTAINER] [-a NODE] [--chroot] [--all] [--json] [-0]
  sneakpeek -t merged_dir [-f INSPECT.json|-] [-n CONTAINER] [-a NODE]
  sneakpeek -t files|merged_dir [--namespace NS | -A] [-l SEL] [--pods-file FILE] [-e POD]... [--running]
  sneakpeek -t fswatch    [-a NODE -n CONTAINER | cluster options] [--stop [--purge]]
  sneakpeek -t procmon|tcptracer [-a NODE -n CONTAINER | cluster options] [--backend bcc|bpftrace] [--stop [--purge]]
  sneakpeek -t fswatch|procmon|tcptracer --status [--json] [-a NODE [-n CONTAINER] | cluster options]
  sneakpeek -t fswatch|procmon|tcptracer --reconcile [--json] [--backend B] [-a NODE [-n CONTAINER] | cluster options]
  sneakpeek --cleanup [--namespace NS | -A] [--dry-run]
  sneakpeek -t procmon|tcptracer|fswatch[,…] --events [--since TIME] [--follow] [--json] [--upper-only]
            [-a NODE -n CONTAINER | cluster options]

TYPES
  files        what the container changed, from its overlay layers: A added, C changed, D deleted
               (docker diff without the daemon). Host paths under MergedDir; --chroot prints
               container paths, the same lines docker diff prints (-c podman: podman diff's).
               Tree order. What the runtime itself made (/dev, /proc, /sys, /run, /etc/hostname,
               /etc/hosts, /etc/resolv.conf, /etc/mtab, …) is never a line. A stopped container
               still works (container paths, as it has no mounted root).
  merged_dir   the container's merged root on the host
  fswatch      watch what the container changes from now on: systemd unit fswatch@<ID>.service
               (ID = 12-hex container id) runs fswatch on its UpperDir and logs Created, Updated,
               Removed, MovedFrom, MovedTo, AttributeModified events with timestamps (journal,
               or <log.dir>/fswatch-<ID>.log with log.target: file). Installs the template
               <unitDir>/fswatch@.service when missing or changed, writes <envDir>/fswatch/<ID>.env,
               daemon-reloads once, starts (or restarts, when changed) each instance. Prints
               NAME UNIT started|restarted|running LOG. Warns when fs.inotify.max_user_watches is
               below the directories to watch.
  procmon      trace every exec() in the container: systemd unit execsnoop@<ID>.service.
  tcptracer    trace the container's TCP connects and accepts: tcptracer@<ID>.service.
               Both pin a BPF map <mapDir>/mnt_ns_<ID> holding exactly the container's
               mount-namespace inode (read back with bpftool -j and checked), install the
               template (and, for bpftrace, <envDir>/tracers/<tool>.bt) when missing or changed,
               write <envDir>/<tool>/<ID>.env, daemon-reload once, start each instance. Backend
               bcc runs BCC's execsnoop/tcptracer --mntnsmap MAP (paths.execsnoop/tcptracer);
               bpftrace runs a tracepoint program filtered in the kernel on the inode (for
               kernels without kprobes or headers). Prints NAME UNIT started|restarted|running
               LOG INODE MAP created|added|present. --stop also removes the map, unless the
               other type's instance of the container still uses it.

KEEPING IT TRUE (fswatch, procmon, tcptracer)
  --status     what is watched now, read only: one line per instance, NODE,ID UNIT STATE and what
               is wrong. Cluster-wide, every instance of the type found on each node (env files
               and systemd), selected or not, so orphans show; with -n, that container's. STATE:
               active (running, current), stale (a tracer's container stopped, or its map or env
               file does not hold exactly the container's CURRENT mount-namespace inode, asked of
               the engine; fswatch's UpperDir is not the container's), failed (+ its last log
               line), inactive, orphan (the engine has no such container), missing (a selected
               container with no instance), unknown (the engine did not answer). Exit 0 only when
               every one is active.
  --reconcile  make each node match: missing → started, stale or failed → restarted (the new key
               added to the map before the old one is removed, the unit restarted with the new
               inode), orphans and tracers of stopped containers → stopped and removed (map, env
               file); running instances of containers not selected are refreshed, never removed.
               One line per change (NODE,ID UNIT started|restarted|removed WHY), then
               'N started, M restarted, K removed, J unchanged' on stderr. Holds the node lock
               (config lock): a run that overlaps another on a node waits lock.wait seconds, then
               says 'busy' for that node and still exits 0. For cron and the shipped
               systemd/sneakpeek-reconcile@.timer (README).

EVENTS (--events: what the units of fswatch, procmon and tcptracer recorded)
  Reads the selected containers' instances back from the journal (or the log files, with
  log.target: file), one ssh session per node carrying every container of that node, all
  nodes at once; oldest first per node, nodes interleaved as their events arrive. Several
  types in one stream: -t procmon,tcptracer,fswatch (or -t given several times). One line per
  event, prefixed like all cluster output (NODE,CONTAINERID12; else the container name):
    PREFIX TIME exec pid=P ppid=PP uid=U ret=R comm=C file=F [UPPER(upper|copyup)] args: A0 A1 …
    PREFIX TIME connect|accept pid=P comm=C SADDR:SPORT ->|<- DADDR:DPORT
    PREFIX TIME file PATH FLAG,…
  (a value with blanks, quotes, backslashes, control characters or bytes that are not UTF-8 is
  double-quoted, with \\" \\\\ \\t \\n \\r \\xNN escapes). UPPER: the exec'd file lives in the
  container's overlay upper layer — written (upper) or changed (copyup, e.g. chmod) in the
  container after it started: "drop and execute" (bpftrace backend only).
  --json: one object a line: time (RFC 3339), node, nodeIP, pod, namespace, container, id,
  type, then procmon: pid, ppid, uid, comm, ret, filename, args[], upperLayer (layer; argc and
  truncated when something was cut); tcptracer: kind (connect|accept), ip, saddr, sport, daddr,
  dport, pid, comm; fswatch: path (container path), hostPath, flags[]. A text that is not
  UTF-8 has U+FFFD in it and its bytes in base64 in <name>Bytes (argsBytes: every argument).
  --follow keeps reading until Ctrl-C, instances started later included. A node whose session
  drops is said on stderr and reconnected with backoff (1 s doubling to 30 s); it resumes right
  after the last event printed (journal cursor, log file offset): nothing lost, nothing twice.
  (--transport kubectl: a follower's pod lasts timeouts.events, then a new one takes over.)

OPTIONS
  -t, --type TYPE        what to do (required)
  -f, --file FILE        read docker/podman inspect JSON from FILE ('-' = stdin); no daemon needed
  -n, --name CONTAINER   container name or id (picks one when FILE holds several)
  -a, --address NODE     run on NODE over ssh, or with --transport kubectl on the node named NODE
                         (default: this host)
  -u, --user USER        ssh user (config ssh.user; default vagrant)
  -c, --engine ENGINE    docker | podman | crictl | ctr | containerd (config engine; containerd =
                         crictl when the node has it, else ctr; ctr: config containerd.address,
                         containerd.namespace)
      --chroot           print container paths (/etc/motd) instead of host paths
      --all              print every path of the merged view (the original's literal output;
                         it walks the whole merged view, so it takes as long as the image is big)
      --json             one JSON object a line: kind, path, hostPath, type, size, mode, mtime;
                         a name that is not UTF-8 has U+FFFD in path and its bytes in pathBytes
                         (base64; hostPathBytes likewise)
  -0, --null             end lines with NUL instead of newline
      --stop             tear down instead (fswatch, procmon, tcptracer): stop the container's
                         instance, remove its env file; prints NAME UNIT stopped|absent
      --purge            with --stop: also remove the type's template(s) from the node, unless
                         other instances there still use them
      --backend B        procmon/tcptracer tracer: bcc | bpftrace (config backend; default bcc)
      --status           show every instance and what is wrong with it (see above); --json too
      --reconcile        start what is missing, restart what is stale, remove orphans (see above)
      --events           print what the type's units recorded (see EVENTS), instead of setting up
      --since TIME       with --events: from TIME on: a duration back from now on each node's clock
                         (30s, 10m, 2h, 1d) or a time (2026-12-01T15:00:00Z; no zone: local time)
      --follow           with --events: keep printing new events until Ctrl-C (no deadline)
      --upper-only       with --events -t procmon: only execs of a file in the upper layer
      --dry-run          print each node's script instead of running it
      --transport T      how scripts reach -a NODE: ssh (NODE = host name or IP) | kubectl (NODE = node
                         name: one privileged pod on it per command); config transport, SNEAKPEEK_TRANSPORT
      --cleanup          delete the pods transport kubectl left behind (a run killed with SIGKILL):
                         every pod sneakpeek made (labels app.kubernetes.io/managed-by=sneakpeek and
                         sneakpeek.io/run=RUN, name sneakpeek-RUN-N) in kubectl.namespace
                         (--namespace NS, or -A: every namespace); prints NS/POD NODE PHASE deleted.
                         Pods of runs still going are deleted too
      --timeout S        give each node S seconds (config timeouts: files 900, merged_dir 60,
                         fswatch/procmon/tcptracer 120, --events 120, --follow none); a node past
                         it is ended, on both sides, and reported as NODE: timed out after Ss
      --config FILE      configuration (default: SNEAKPEEK_CONFIG, else sneakpeek.config.yaml)
  -q, --quiet            no progress line (shown only on a terminal, for several nodes)
  -v, --verbose          more detail on stderr
  -h, --help             this text

CLUSTER-WIDE (no -n, no -f): every container get_all_containers would list, found with kubectl
(or --pods-file), one ssh session per node carrying all of its containers, nodes in parallel
(config concurrency). Lines are labelled NODE,CONTAINERID12; --json adds pod, namespace,
container, node, nodeIP, id. With --transport kubectl, NODE is the node's name and each node's
script runs in one short-lived privileged pod on it (deleted however the run ends). The engine
on each node follows the pod's runtime (docker:// → docker, containerd:// → crictl when that
node has it, else ctr, cri-o:// → crictl) unless -c is given. -a NODE keeps that node's
containers only. A failed node or container is reported and the rest go on; stderr ends
with \`N ok, M failed\`.
${CLUSTER_HELP}

EXAMPLES
  docker inspect web > web.json; sneakpeek -t files --chroot -f web.json   # docker diff, no daemon
  sneakpeek -t files --chroot -n web                                       # this host's engine
  sneakpeek -t files -a 10.0.0.3 -n k8s_app_web_0 --json | jq .path        # one node, over ssh
  sneakpeek -t merged_dir -n web                                           # where its root is mounted
  sneakpeek -t files -A --chroot -e noisy-0    # every container in the cluster, one ssh session per node
  sneakpeek -t fswatch -a 10.0.0.3 -n k8s_app_web_0                         # fswatch@<ID>.service on that node
  sneakpeek -t fswatch --stop --purge -A       # stop every instance, remove env files and the template
  sneakpeek -t procmon --backend bpftrace -n web   # execsnoop@<ID>.service: every exec in container web
  sneakpeek -t tcptracer -A -e noisy-0         # tcptracer@<ID>.service for every container but one pod
  sneakpeek -t procmon --status -A             # what each node's execsnoop@ instances watch; exit 1 if any is not right
  sneakpeek -t procmon --reconcile -A -q --backend bpftrace    # from cron, every minute
  sneakpeek -t files -A --chroot --transport kubectl   # no ssh: one privileged pod per node, then deleted
  sneakpeek --cleanup -A                       # remove pods a killed kubectl-transport run left behind
  sneakpeek -t procmon --events --since 10m -n web # what container web executed in the last 10 minutes
  sneakpeek -t procmon,tcptracer,fswatch --events --follow --json -A | jq -c 'select(.pod == "web-0")'
  sneakpeek -t procmon --events --upper-only -A    # every binary a container dropped and ran

EXIT CODES
  0 done · 1 the operation failed for at least one node/container (or timed out); --status: an
  instance is not active and current · 2 usage or configuration error · 130 / 143 interrupted by Ctrl-C / SIGTERM (every node's work ended too)
`;

const TYPES = ['files', 'merged_dir', 'fswatch', 'procmon', 'tcptracer'] as const;
type Type = (typeof TYPES)[number];

/** Which config deadline (timeouts.<job>) a type's node runs get. */
const JOB_OF: Record<(typeof TYPES)[number], Job> = { files: 'files', merged_dir: 'lookup', fswatch: 'units', procmon: 'units', tcptracer: 'units' };

/** The type-specific options each type takes. */
const TYPE_OPTIONS: Record<(typeof TYPES)[number], readonly string[]> = {
  files: ['chroot', 'all', 'json', 'null'],
  merged_dir: [],
  fswatch: ['stop', 'purge', 'status', 'reconcile', 'json'],
  procmon: ['stop', 'purge', 'backend', 'json', 'status', 'reconcile'],
  tcptracer: ['stop', 'purge', 'backend', 'json', 'status', 'reconcile'],
};
const OPTION_TYPES: Record<string, string> = Object.fromEntries(
  ['chroot', 'all', 'json', 'null', 'stop', 'purge', 'backend', 'status', 'reconcile'].map((o) => [
    o, TYPES.filter((t) => TYPE_OPTIONS[t].includes(o)).map((t) => `-t ${t}`).join(', '),
  ]),
);

async function parse(argv: string[]) {
  return clusterOptions(await cli(argv, 'sneakpeek'))
    // Several types (given more than once, or comma-separated) go with --events only.
    .option('type', { alias: 't', type: 'string', array: true, nargs: 1, choices: TYPES, coerce: (v: string[]) => v.flatMap((x) => x.split(',')) })
    .option('file', { alias: 'f', type: 'string', nargs: 1 }) // nargs 1: `--file -` is stdin
    .option('name', { alias: 'n', type: 'string' })
    .option('address', { alias: 'a', type: 'string' })
    .option('user', { alias: 'u', type: 'string' })
    .option('engine', { alias: 'c', type: 'string' })
    .option('chroot', { type: 'boolean', default: false })
    .option('all', { type: 'boolean', default: false })
    .option('json', { type: 'boolean', default: false })
    .option('null', { alias: '0', type: 'boolean', default: false })
    .option('stop', { type: 'boolean', default: false })
    .option('purge', { type: 'boolean', default: false })
    .option('backend', { type: 'string' })
    .option('status', { type: 'boolean', default: false })
    .option('reconcile', { type: 'boolean', default: false })
    .option('dry-run', { type: 'boolean', default: false })
    .option('cleanup', { type: 'boolean', default: false })
    .option('events', { type: 'boolean', default: false })
    .option('since', { type: 'string', nargs: 1 })
    .option('follow', { type: 'boolean', default: false })
    .option('upper-only', { type: 'boolean', default: false })
    .parseSync();
}

/** --cleanup: delete the pods transport kubectl left behind (lib/io/kubectl-transport.ts). */
async function cleanup(args: Awaited<ReturnType<typeof parse>>, io: IO): Promise<number> {
  const extra = (['type', 'file', 'name', 'address', 'selector', 'podsFile', 'exclude', 'backend', 'since'] as const).find((k) => args[k] !== undefined)
    ?? (['status', 'reconcile', 'stop', 'purge', 'events', 'follow', 'upperOnly', 'chroot', 'all', 'json', 'null'] as const).find((k) => args[k]);
  if (extra) throw new UsageError(`--cleanup takes only --namespace NS or -A (and --dry-run), not --${extra.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
  if (args.namespace !== undefined && args.allNamespaces) throw new UsageError('--namespace and -A exclude each other');
  const cfg = loadConfig(args.config, io.env, { 'timeouts.kubectl': args.timeout, 'kubectl.namespace': args.namespace });
  const { cleanupPods } = await import('../lib/io/kubectl-transport.ts');
  return cleanupPods(cfg, { namespace: args.allNamespaces ? null : undefined, dryRun: args['dry-run'] }, io);
}

export async function main(argv: string[], io: IO = processIO()): Promise<number> {
  return guard(io, 'sneakpeek', wantsVerbose(argv), async () => {
    if (wantsHelp(argv)) return void io.stdout.write(HELP), 0;
    const args = await parse(argv);
    if (args.help) {
      io.stdout.write(HELP);
      return 0;
    }
    if (args.cleanup) return cleanup(args, io);
    if (!args.type?.length) throw new UsageError('missing -t TYPE (files, merged_dir, fswatch, procmon, tcptracer), or --cleanup');
    if (args._.length) throw new UsageError(`unexpected argument '${String(args._[0])}'`);
    const types = [...new Set(args.type as Type[])];
    if (args.events || args.follow || args.since !== undefined || args['upper-only']) return events(args, types, io);
    if (types.length > 1) throw new UsageError('several -t types go with --events only');
    const type = types[0]!;
    // An option that does nothing for this type is a mistake worth saying, not ignoring.
    for (const [opt, on] of [['chroot', args.chroot], ['all', args.all], ['json', args.json], ['null', args.null],
      ['stop', args.stop], ['purge', args.purge], ['backend', args.backend !== undefined],
      ['status', args.status], ['reconcile', args.reconcile]] as const) {
      if (on && !TYPE_OPTIONS[type].includes(opt))
        throw new UsageError(`--${opt} does not apply to -t ${type}${OPTION_TYPES[opt] ? ` (only to ${OPTION_TYPES[opt]})` : ''}`);
    }
    if (args.purge && !args.stop) throw new UsageError('--purge goes with --stop');
    const lifecycle = args.status ? 'status' : args.reconcile ? 'reconcile' : undefined;
    if (args.status && args.reconcile) throw new UsageError('--status and --reconcile exclude each other');
    if (lifecycle && args.stop) throw new UsageError(`--${lifecycle} and --stop exclude each other`);
    if (args.status && args.backend !== undefined) throw new UsageError('--backend does not apply to --status');
    if (lifecycle && args.file !== undefined) throw new UsageError(`--${lifecycle} asks the engine on the node: name the container with -n, not -f`);
    if (type === 'fswatch' && args.json && !lifecycle) throw new UsageError('--json with -t fswatch goes with --status or --reconcile');
    const job = JOB_OF[type];
    const cfg = loadConfig(args.config, io.env, {
      'ssh.user': args.user, engine: args.engine, backend: args.backend, transport: args.transport, [`timeouts.${job}`]: args.timeout,
    });
    const node = args.address === undefined ? undefined : checkNode(args.address, cfg.transport);
    const sel = await selectTargets({ ...args, node, engineForced: args.engine !== undefined }, cfg, io);
    const common = {
      dryRun: args['dry-run'], verbose: args.verbose, quiet: args.quiet, cluster: sel.cluster, failedBefore: sel.failed, deadline: cfg.timeouts[job],
    };

    // Each type loads only what it needs.
    if (lifecycle && (type === 'fswatch' || type === 'procmon' || type === 'tcptracer')) {
      const { runLifecycle } = await import('./sneakpeek/lifecycle.ts');
      // -a NODE without -n: that node is looked at even when no selected pod runs there (orphans).
      const nodes = sel.cluster && node !== undefined && !sel.targets.length ? [node] : [];
      return runLifecycle(sel.targets, cfg, { ...common, type, mode: lifecycle, backend: cfg.backend, json: args.json, all: sel.cluster, nodes }, io);
    }
    if (type === 'fswatch') {
      const { runFswatch } = await import('./sneakpeek/fswatch.ts');
      return runFswatch(sel.targets, cfg, { ...common, stop: args.stop, purge: args.purge }, io);
    }
    if (type === 'procmon' || type === 'tcptracer') {
      const { runMonitor } = await import('./sneakpeek/monitor.ts');
      return runMonitor(sel.targets, cfg, { ...common, type, backend: cfg.backend, stop: args.stop, purge: args.purge, json: args.json }, io);
    }
    const { runFiles } = await import('./sneakpeek/files.ts');
    return runFiles(sel.targets, cfg, { ...common, type, chroot: args.chroot, all: args.all, json: args.json, nul: args.null }, io);
  });
}

/** --events: check what goes with it, select the containers as setup does, read their units back. */
async function events(args: Awaited<ReturnType<typeof parse>>, types: Type[], io: IO): Promise<number> {
  const { EVENT_TYPES, parseSince } = await import('../lib/event-reader.ts');
  if (!args.events) throw new UsageError('--since, --follow and --upper-only go with --events');
  const notEvents = types.find((t) => !(EVENT_TYPES as readonly string[]).includes(t));
  if (notEvents) throw new UsageError(`--events applies to -t procmon, tcptracer and fswatch (not -t ${notEvents})`);
  for (const [opt, on] of [['chroot', args.chroot], ['all', args.all], ['null', args.null], ['stop', args.stop], ['purge', args.purge],
    ['backend', args.backend !== undefined], ['status', args.status], ['reconcile', args.reconcile]] as const) {
    if (on) throw new UsageError(`--${opt} does not go with --events`);
  }
  if (args['upper-only'] && (types.length !== 1 || types[0] !== 'procmon')) throw new UsageError('--upper-only goes with -t procmon alone');
  if (args.follow && args.timeout !== undefined) throw new UsageError('--timeout does not go with --follow (a follower runs until Ctrl-C)');
  const cfg = loadConfig(args.config, io.env, { 'ssh.user': args.user, engine: args.engine, transport: args.transport, 'timeouts.events': args.timeout });
  const since = args.since === undefined ? undefined : parseSince(args.since, Date.now());
  const node = args.address === undefined ? undefined : checkNode(args.address, cfg.transport);
  const sel = await selectTargets({ ...args, node, engineForced: args.engine !== undefined }, cfg, io);
  const { runEvents } = await import('./sneakpeek/events.ts');
  return runEvents(sel.targets, cfg, {
    dryRun: args['dry-run'], verbose: args.verbose, quiet: args.quiet, cluster: sel.cluster, failedBefore: sel.failed, deadline: cfg.timeouts.events,
    types: types as (typeof EVENT_TYPES)[number][], since, follow: args.follow, json: args.json, upperOnly: args['upper-only'],
  }, io);
}

if (isEntry(import.meta.url)) await runEntry(main);
