// `-t procmon` / `-t tcptracer`: the execsnoop@ / tcptracer@ unit specs, the bpftrace programs
// they run, and the node-side sh that finds a container's mount namespace and fills its map.
// Pure: config in, unit spec and node steps out (the node functions: scripts/sneakpeek.sh
// sp_tracer, sp_tracer_stop, sp_program; lib/units.ts installs and runs the instances).
//
// One template per tool serves both backends. Each instance's env file names its backend and
// values; ExecStart is a one-line `sh -c` case that runs the matching command:
//   bcc       <paths.execsnoop> -T -U -x --mntnsmap <mapDir>/mnt_ns_<ID>
//             <paths.tcptracer> -t --mntnsmap <mapDir>/mnt_ns_<ID>
//   bpftrace  <paths.bpftrace> <envDir>/tracers/<tool>.bt <mount-namespace inode>
// The pinned map is made for both backends (bpftrace filters on the inode it is given, which
// is the map's one key), so a node shows what it watches with `bpftool map dump`, and an
// instance can switch backend without any other change. execsnoop@<ID> and tcptracer@<ID>
// of one container share the map; teardown of one keeps it while the other is configured.
//
// Records (besides those of lib/units.ts and lib/bpfmap.ts):
//   NS KEY ID PID INODE        (scripts/get_container_ns.sh sp_ns)
//   ERR KEY MESSAGE            also before anything is done for a container when the template
//                              (or program) step failed: no map is pinned then
//   PROG - FILE STATE          a bpftrace program: created | updated | unchanged | removed
import type { Backend, Config, Engine } from './config.ts';
import { UsageError } from './errors.ts';
import { sh, shQuote } from './quote.ts';
import { checkInstanceId, checkUnitPath, envDirOf, templatePath, trim, type EnvRef, type UnitSpec } from './units.ts';

export const MONITOR_TYPES = ['procmon', 'tcptracer'] as const;
export type MonitorType = (typeof MONITOR_TYPES)[number];

/** The unit template (and program) each type installs. */
export const TOOL_OF: Record<MonitorType, 'execsnoop' | 'tcptracer'> = { procmon: 'execsnoop', tcptracer: 'tcptracer' };
export type Tool = (typeof TOOL_OF)[MonitorType];

/** The other tool that reads the same per-container map. */
const OTHER_TOOL: Record<Tool, Tool> = { execsnoop: 'tcptracer', tcptracer: 'execsnoop' };

/** BCC flags before --mntnsmap: timestamps, uid and failed execs, like the bpftrace programs print. */
export const BCC_FLAGS: Record<Tool, string[]> = { execsnoop: ['-T', '-U', '-x'], tcptracer: ['-t'] };

export const ENV_CONTAINER = 'SNEAKPEEK_CONTAINER';
export const ENV_BACKEND = 'SNEAKPEEK_BACKEND';
export const ENV_MAP = 'SNEAKPEEK_MNTNS_MAP';
export const ENV_INODE = 'SNEAKPEEK_MNTNS_INODE';

/**
 * Hardening that leaves BCC and bpftrace working: they need CAP_BPF/CAP_PERFMON/CAP_SYS_ADMIN,
 * /sys (tracefs, BTF, bpffs), /proc and (BCC) kernel headers and an LLVM JIT, so no capability
 * bounding, no ProtectKernelTunables, no MemoryDenyWriteExecute. No PrivateTmp either: the
 * bpftrace program is read from envDir, wherever a site puts it.
 */
export const TRACER_HARDENING = [
  'NoNewPrivileges=yes',
  'ProtectSystem=full',
  'ProtectHome=read-only',
  'PrivateNetwork=yes',
  'ProtectKernelModules=yes',
  'ProtectControlGroups=yes',
  'ProtectClock=yes',
  'ProtectHostname=yes',
  'RestrictRealtime=yes',
  'RestrictSUIDSGID=yes',
  'LockPersonality=yes',
];

/** Where the bpftrace program of `tool` lives on the node. */
export function programPath(cfg: Config, tool: Tool): string {
  return `${trim(checkUnitPath('envDir', cfg.envDir))}/tracers/${tool}.bt`;
}

/** Every container map is <mapDir>/mnt_ns_<ID>: the one place that says so. */
const mapPrefix = (cfg: Config) => `${trim(checkUnitPath('mapDir', cfg.mapDir))}/mnt_ns_`;

/** Where sneakpeek pins the map of container ID on a node. */
export function mapFileOf(cfg: Config, id: string): string {
  return `${mapPrefix(cfg)}${checkInstanceId(id)}`;
}

/** The binary the backend runs for `tool` (must exist on the node). */
export function backendBinary(cfg: Config, tool: Tool, backend: Backend): string {
  const bin = backend === 'bpftrace' ? cfg.paths.bpftrace : cfg.paths[tool];
  return checkUnitPath(`paths.${backend === 'bpftrace' ? 'bpftrace' : tool}`, bin);
}

/** The backend's command: literal words, and the map / inode (literal, or the env file's variable). */
function backendWords<T extends string | EnvRef>(cfg: Config, tool: Tool, backend: Backend, values: { map: T; inode: T }): (string | T)[] {
  if (backend === 'bpftrace') return [backendBinary(cfg, tool, backend), programPath(cfg, tool), values.inode];
  return [backendBinary(cfg, tool, backend), ...BCC_FLAGS[tool], '--mntnsmap', values.map];
}

/** The exact argv each backend runs, with the env file's values put in (what the unit executes). */
export function backendArgv(cfg: Config, tool: Tool, backend: Backend, values: { map: string; inode: string }): string[] {
  return backendWords(cfg, tool, backend, values);
}

/**
 * The one-line sh that picks the backend's command from the env file (ExecStart's `sh -c`):
 * literal words through shQuote, the env file's values as "$NAME" (one word whatever they hold).
 * renderTemplate then escapes the whole program once more for systemd (systemdArg).
 */
export function launcher(cfg: Config, tool: Tool): string {
  const ref = (name: string) => `"$${name}"`;
  const word = (w: string | EnvRef) => (typeof w === 'string' ? shQuote(w) : ref(w.env));
  const arm = (b: Backend) => `exec ${backendWords(cfg, tool, b, { map: { env: ENV_MAP }, inode: { env: ENV_INODE } }).map(word).join(' ')}`;
  return `case ${ref(ENV_BACKEND)} in bcc) ${arm('bcc')} ;; bpftrace) ${arm('bpftrace')} ;; *) echo "${tool}@: unknown ${ENV_BACKEND} '$${ENV_BACKEND}' (bcc or bpftrace)" >&2; exit 2 ;; esac`;
}

const DESCRIPTION: Record<Tool, string> = {
  execsnoop: 'sneakpeek: exec() calls of container %i (execsnoop in its mount namespace)',
  tcptracer: 'sneakpeek: TCP connects and accepts of container %i (tcptracer in its mount namespace)',
};

export function tracerSpec(cfg: Config, tool: Tool): UnitSpec {
  return {
    tool,
    type: tool === 'execsnoop' ? 'procmon' : 'tcptracer',
    description: DESCRIPTION[tool],
    execStart: ['/bin/sh', '-c', launcher(cfg, tool)],
    env: [ENV_CONTAINER, ENV_BACKEND, ENV_MAP, ENV_INODE],
    // The log's first line says whose events follow.
    serviceExtra: [
      `ExecStartPre=/bin/echo "sneakpeek ${tool}: container \${${ENV_CONTAINER}} mount namespace \${${ENV_INODE}} backend \${${ENV_BACKEND}} map \${${ENV_MAP}}"`,
      // Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK.
      'LimitMEMLOCK=infinity',
    ],
    hardening: TRACER_HARDENING,
  };
}

/** Check the paths this type puts in units and scripts before anything runs. */
export function checkTracerConfig(cfg: Config, tool: Tool, backend: Backend): void {
  backendBinary(cfg, tool, backend);
  checkUnitPath('mapDir', cfg.mapDir);
  checkUnitPath('envDir', cfg.envDir);
  if (!/^[A-Za-z0-9._+/-]+$/.test(cfg.paths.bpftool)) throw new UsageError(`config: 'paths.bpftool' must be a command name or path (got ${JSON.stringify(cfg.paths.bpftool)})`);
}

/**
 * Step (bpftrace backend, after templateStep): install the program if missing or changed
 * (PROG record); a change restarts the instances set up in this run, like a template change.
 */
export function programStep(cfg: Config, tool: Tool, program: string): string {
  if (!/\bBEGIN\b/.test(program) || !program.includes('$1')) throw new Error(`${tool}.bt does not look like sneakpeek's bpftrace program`);
  return sh`sp_program ${tool} ${programPath(cfg, tool)} ${program.replace(/\n+$/, '')}`;
}

/** Step: one container: template usable, namespace, map (exactly its inode), env file (sp_tracer). */
export function setupStep(cfg: Config, key: number, engine: Engine, name: string, tool: Tool, backend: Backend): string {
  return sh`sp_tracer ${key} ${engine} ${name} ${tool} ${backend} ${trim(checkUnitPath('mapDir', cfg.mapDir))} ${envDirOf(cfg, tool)}`;
}

/**
 * Step: teardown of one container's instance: stop it, remove its env file, and its map unless
 * the other tool's instance for the same container is configured (sp_tracer_stop).
 */
export function teardownStep(cfg: Config, key: number, engine: Engine, name: string, tool: Tool): string {
  return sh`sp_tracer_stop ${key} ${engine} ${name} ${tool} ${trim(checkUnitPath('mapDir', cfg.mapDir))} ${envDirOf(cfg, tool)} ${envDirOf(cfg, OTHER_TOOL[tool])}`;
}

/** Step (--purge, after units.ts purgeStep): the program goes with its template. */
export function programPurgeStep(cfg: Config, tool: Tool): string {
  return sh`sp_program_purge ${tool} ${programPath(cfg, tool)} ${templatePath(cfg, tool)} ${trim(cfg.envDir)}`;
}
