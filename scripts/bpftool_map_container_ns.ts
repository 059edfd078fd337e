#!/usr/bin/env -S sh -c 'exec "$(dirname "$(readlink -f "$0")")/../bin/bpftool_map_container_ns" "$@"'
// bpftool_map_container_ns — pin a mount-namespace map for BCC's --mntnsmap, then start TYPE@NAME.service.
// On the node it runs scripts/bpftool_map_container_ns.sh: sp_map (bpftool map create / update /
// -j dump), then for sneakpeek's templates sp_template + sp_env + systemctl start (sp_start),
// for a template of your own `systemctl start TYPE@NAME` (sp_start_unit). MAP and OK records
// come back; the map's key is decoded and checked here.
import path from 'node:path';
import { cli, wantsHelp, wantsVerbose } from '../lib/cli.ts';
import { checkMapFile, checkMapHolds, mapNameOf, mapStep, parseMapRecord } from '../lib/bpfmap.ts';
import { BACKENDS, type Config } from '../lib/config.ts';
import { parseInode } from '../lib/endian.ts';
import { OpError, UsageError } from '../lib/errors.ts';
import { sh } from '../lib/quote.ts';
import { checkNode } from '../lib/targets.ts';
import { backendBinary, checkTracerConfig, ENV_BACKEND, ENV_CONTAINER, ENV_INODE, ENV_MAP, programStep, tracerSpec, type Tool } from '../lib/tracers.ts';
import { envStep, reloadStep, settleStep, startStep, templateStep } from '../lib/units.ts';
import { parseRecords, utf8, type RecordOf } from '../lib/wire.ts';
import { guard, isEntry, loadConfig, processIO, runEntry, type IO } from '../lib/io/entry.ts';
import { nodeScript, readProgram } from '../lib/io/node-files.ts';
import { runNodeScript, transportNote } from '../lib/io/runner.ts';

export const HELP = `bpftool_map_container_ns — pin a mount-namespace map for BCC's --mntnsmap, then start TYPE@NAME.service.

USAGE
  bpftool_map_container_ns [-a NODE] [--transport T] [--backend B] [--no-start] [--timeout S] [--dry-run] INODE FILE TYPE
  INODE=… FILE=… TYPE=… bpftool_map_container_ns          (the original's environment form)

INODE is a mount-namespace inode (get_container_ns prints it); FILE the map's pin path on a
BPF file system; TYPE the unit template to start. On the node (this host without -a; one ssh
session with it), as root (sudo -n otherwise):
  1. if FILE is missing: bpftool map create FILE type hash key 8 value 4 entries 128
     name NAME flags 0. NAME is the kernel's map name, at most 15 characters: FILE's
     basename with anything but letters, digits, '_' and '.' turned into '_', then its LAST
     15 characters (/sys/fs/bpf/mnt_ns_4f1c2a9b7d3e → ns_4f1c2a9b7d3e). An existing FILE
     must be such a map (hash, key 8, value 4).
  2. if the key is absent: bpftool map update … key hex <INODE as 8 bytes, node byte order>
     value hex 00 00 00 00. Other keys stay (a map may hold several namespaces).
  3. bpftool -j map dump pinned FILE; the key is decoded here and must equal INODE.
  4. systemctl start TYPE@INSTANCE.service, INSTANCE = FILE's basename without a leading
     mnt_ns_ (mnt_ns_4f1c2a9b7d3e → 4f1c2a9b7d3e: the instance sneakpeek -t procmon manages).
     For TYPE execsnoop or tcptracer (sneakpeek's templates) INSTANCE must be a 12-hex
     container id; the template (and bpftrace program) is installed if missing or changed,
     and <envDir>/TYPE/INSTANCE.env written with the map, inode and backend first.
Running it again changes nothing (prints "present ... running"). Two runs at once on one
node take turns (a lock on the node, config lock.file; the second waits up to lock.wait
seconds, then fails with "busy"). INODE empty, 0 or not a
positive integer is refused: it would make a key that filters nothing.

Prints: FILE INODE created|added|present [UNIT started|restarted|running]

OPTIONS
  -a, --address NODE     the node (hostname or IP; its node name with --transport kubectl; default: this host)
  -u, --user USER        ssh user (config ssh.user; default vagrant)
      --backend B        for execsnoop/tcptracer: bcc | bpftrace (config backend; default bcc)
      --no-start         only the map: no unit is started
      --timeout S        give the node S seconds (config timeouts.units; default 120)
      --dry-run          print the node script instead of running it
      --transport T      how scripts reach -a NODE: ssh (NODE = host name or IP) | kubectl (NODE = node
                         name: one privileged pod on it per command); config transport, SNEAKPEEK_TRANSPORT
      --config FILE      configuration (default: SNEAKPEEK_CONFIG, else sneakpeek.config.yaml)
  -v, --verbose          more detail on stderr
  -h, --help             this text

ENVIRONMENT
  INODE, FILE, TYPE      used for a positional argument that is not given

EXAMPLES
  bpftool_map_container_ns "$(get_container_ns -n web)" /sys/fs/bpf/mnt_ns_set my-execsnoop
  bpftool_map_container_ns 4026532251 /sys/fs/bpf/mnt_ns_4f1c2a9b7d3e execsnoop   # execsnoop@4f1c2a9b7d3e
  bpftool_map_container_ns --no-start 4026532251 /sys/fs/bpf/mnt_ns_set            # only the map

EXIT CODES
  0 the map holds INODE (and the unit runs) · 1 it could not be done (bpftool missing, bpffs
  not mounted, map full, no privilege, the unit did not start, busy, timed out) · 2 usage or
  configuration error
`;

const OUR_TOOLS: readonly string[] = ['execsnoop', 'tcptracer'];

/** The unit instance of FILE: its basename without a leading mnt_ns_. */
export function instanceOf(file: string): string {
  const base = path.posix.basename(file);
  const inst = base.startsWith('mnt_ns_') ? base.slice('mnt_ns_'.length) : base;
  if (!inst) throw new UsageError(`map file ${JSON.stringify(file)}: nothing left for a unit instance name after mnt_ns_`);
  return inst;
}

export function checkType(type: string): string {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.:-]*$/.test(type) || type.length > 200)
    throw new UsageError(`TYPE ${JSON.stringify(type)}: expected a unit template name (letters, digits, _.:-), e.g. execsnoop`);
  return type;
}

export interface Plan {
  inode: string;
  file: string;
  type: string;
  instance: string;
  start: boolean;
}

/** The node's steps: lock, map, then (unless --no-start) the unit; with our templates the map only once they are installed. */
export function planSteps(p: Plan, cfg: Config, program?: string): string[] {
  const map = mapStep(0, p.file, mapNameOf(p.file), p.inode, false);
  if (!p.start) return ['sp_lock', map];
  if (!OUR_TOOLS.includes(p.type)) return ['sp_lock', `${map} || exit 0`, sh`sp_start_unit 0 ${`${p.type}@${p.instance}.service`}`];
  const tool = p.type as Tool;
  return [
    'sp_lock',
    templateStep(cfg, tracerSpec(cfg, tool), [backendBinary(cfg, tool, cfg.backend)]),
    ...(cfg.backend === 'bpftrace' ? [programStep(cfg, tool, program ?? readProgram(tool))] : []),
    `sp_tplok 0 ${tool} && ${map} && ${envStep(cfg, 0, tool, p.instance, {
      [ENV_CONTAINER]: p.instance,
      [ENV_BACKEND]: cfg.backend,
      [ENV_MAP]: p.file,
      [ENV_INODE]: p.inode,
    })}`,
    reloadStep(),
    startStep(0),
    settleStep([0]),
  ];
}

export async function main(argv: string[], io: IO = processIO()): Promise<number> {
  return guard(io, 'bpftool_map_container_ns', wantsVerbose(argv), async () => {
    // Positional INODE FILE TYPE: strict about options only.
    if (wantsHelp(argv)) return void io.stdout.write(HELP), 0;
    const args = (await cli(argv, 'bpftool_map_container_ns'))
      .strict(false)
      .strictOptions()
      .option('address', { alias: 'a', type: 'string' })
      .option('user', { alias: 'u', type: 'string' })
      .option('backend', { type: 'string', choices: BACKENDS })
      .option('no-start', { type: 'boolean', default: false })
      .option('dry-run', { type: 'boolean', default: false })
      // INODE stays the text given: yargs would read 1e3 as 1000 and 0x10 as 16.
      .parserConfiguration({ 'boolean-negation': false, 'strip-aliased': true, 'parse-positional-numbers': false })
      .parseSync();
    if (args.help) return void io.stdout.write(HELP), 0;
    const pos = args._.map(String);
    if (pos.length > 3) throw new UsageError(`unexpected argument '${pos[3]}'`);
    const start = !args['no-start'];
    const [inodeArg, fileArg, typeArg] = [pos[0] ?? io.env.INODE, pos[1] ?? io.env.FILE, pos[2] ?? io.env.TYPE];
    if (inodeArg === undefined) throw new UsageError('missing INODE (argument 1, or the environment variable INODE)');
    if (fileArg === undefined) throw new UsageError('missing FILE (argument 2, or the environment variable FILE)');
    if (typeArg === undefined && start) throw new UsageError('missing TYPE (argument 3, or the environment variable TYPE), or give --no-start');
    try {
      parseInode(inodeArg);
    } catch (err) {
      throw new UsageError(`INODE: ${(err as Error).message}`);
    }
    const p: Plan = { inode: inodeArg, file: checkMapFile(fileArg), type: '', instance: '', start };
    if (start) {
      p.type = checkType(typeArg!);
      p.instance = instanceOf(p.file);
    }
    const cfg = loadConfig(args.config, io.env, { 'ssh.user': args.user, backend: args.backend, transport: args.transport, 'timeouts.units': args.timeout });
    const node = args.address === undefined ? undefined : checkNode(args.address, cfg.transport);
    if (start && OUR_TOOLS.includes(p.type)) {
      if (!/^[0-9a-f]{12}$/.test(p.instance))
        throw new UsageError(
          `TYPE ${p.type} is sneakpeek's template: FILE must be <dir>/mnt_ns_<12-hex container id> (got instance '${p.instance}'); use sneakpeek -t procmon|tcptracer, or your own TYPE`,
        );
      checkTracerConfig(cfg, p.type as Tool, cfg.backend);
    }
    const where = node ?? 'localhost';
    const libs = p.start && OUR_TOOLS.includes(p.type) ? (['bpftool_map_container_ns', 'sneakpeek'] as const) : (['bpftool_map_container_ns'] as const);
    const script = nodeScript(cfg, libs, planSteps(p, cfg));
    if (args['dry-run']) return void io.stdout.write(`# node: ${where}\n${transportNote(node, cfg, cfg.timeouts.units)}${script}\n`), 0;
    const run = await runNodeScript({ node, script }, cfg, { deadline: cfg.timeouts.units, env: io.env });

    // Back from the node: MAP (what the map holds), OK (the unit), ERR / WARN / BUSY.
    let map: RecordOf<'MAP'> | undefined;
    let unit: RecordOf<'OK'> | undefined;
    let error: string | undefined;
    for (const r of parseRecords(run.stdout)) {
      if (r.tag === 'MAP') map = r;
      else if (r.tag === 'OK') unit = r;
      else if (r.tag === 'ERR' || r.tag === 'BUSY') error ??= utf8(r.message);
      else if (r.tag === 'WARN') io.stderr.write(`bpftool_map_container_ns: warning: ${where}: ${utf8(r.message)}\n`);
    }
    if (!map) throw new OpError(error ? `${where}: ${error}` : (run.failure ?? `${where}: the node script ended without an answer`));
    const m = parseMapRecord(map);
    const bad = checkMapHolds(m, p.inode, false);
    if (bad) throw new OpError(`${where}: ${bad}`);
    if (args.verbose) io.stderr.write(`bpftool_map_container_ns: ${where}: ${m.file} holds ${m.inodes.join(', ')} (${m.order}-endian node)\n`);
    if (!start) return void io.stdout.write(`${m.file} ${p.inode} ${m.state}\n`), 0;
    if (error || !unit) throw new OpError(`${where}: ${m.file} ${m.state}, but ${error ?? run.failure?.replace(`${where}: `, '') ?? 'the unit was not started'}`);
    io.stdout.write(`${m.file} ${p.inode} ${m.state} ${unit.unit} ${unit.action}\n`);
    return 0;
  });
}

if (isEntry(import.meta.url)) await runEntry(main);
