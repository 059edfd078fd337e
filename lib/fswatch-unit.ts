// `-t fswatch`: the fswatch@.service spec and the node-side sh that finds what to watch.
// Pure: config in, unit spec and node steps out (the node functions: scripts/sneakpeek.sh
// sp_fswatch, sp_fswatch_dirs, sp_inotify; lib/units.ts installs and runs the instances).
//
// fswatch watches the container's UpperDir (only what the container changed; the merged dir
// would also show the whole image). One blind spot of fswatch's inotify monitor (1.14 and
// later alike) shapes this file: it starts watching a new directory only when it sees
// IN_CREATE for it, but overlayfs copies an image directory up by creating it in its work
// dir and renaming it into UpperDir (IN_MOVED_TO) — the first write under /etc or /tmp of a
// fresh container. fswatch would never look inside those. It does, however, re-scan every
// root path that is not watched yet on each turn of its loop. So the unit also gives fswatch
// the image's directories, mapped into UpperDir, as extra roots ($SNEAKPEEK_IMAGE_DIRS):
// missing at first, watched within a second of being copied up. Capped by
// fswatch.imageDirs (shallowest first); directories the container renames itself are not
// covered (README).
//
// Records (besides those of lib/units.ts):
//   WATCH KEY UPPER DIRS IMAGEDIRS   what instance KEY watches: UpperDir, directories in it
//                                    now, image directories given as extra roots
//   INOTIFY - WATCHES INSTANCES      the node's fs.inotify.max_user_watches / _instances
import type { Config, Engine } from './config.ts';
import { UsageError } from './errors.ts';
import type { ContainerFacts } from './inspect.ts';
import { sh } from './quote.ts';
import { envDirOf, instanceIdOf, type UnitSpec } from './units.ts';

export const TOOL = 'fswatch';

/** fswatch's event flag names (fswatch(7) "Event types"); config events must be among them. */
export const FSWATCH_EVENTS = [
  'NoOp', 'PlatformSpecific', 'Created', 'Updated', 'Removed', 'Renamed', 'OwnerModified',
  'AttributeModified', 'MovedFrom', 'MovedTo', 'IsFile', 'IsDir', 'IsSymLink', 'Link', 'Overflow',
  'CloseWrite', // newer fswatch only: 1.14 stops at once ("Unknown event type"), the unit fails visibly
];

/** Hardening that leaves fswatch working: it only reads directories and writes to stdout. */
export const FSWATCH_HARDENING = [
  'NoNewPrivileges=yes',
  'UMask=0077',
  'CapabilityBoundingSet=CAP_DAC_READ_SEARCH',
  'ProtectSystem=strict',
  'ProtectHome=read-only',
  'PrivateTmp=yes',
  'PrivateNetwork=yes',
  'ProtectKernelTunables=yes',
  'ProtectKernelModules=yes',
  'ProtectKernelLogs=yes',
  'ProtectControlGroups=yes',
  'ProtectClock=yes',
  'ProtectHostname=yes',
  'RestrictAddressFamilies=AF_UNIX',
  'RestrictNamespaces=yes',
  'RestrictRealtime=yes',
  'RestrictSUIDSGID=yes',
  'LockPersonality=yes',
  'MemoryDenyWriteExecute=yes',
  'SystemCallArchitectures=native',
];

export const ENV_CONTAINER = 'SNEAKPEEK_CONTAINER';
export const ENV_WATCH_DIR = 'SNEAKPEEK_WATCH_DIR';
export const ENV_IMAGE_DIRS = 'SNEAKPEEK_IMAGE_DIRS';

/** Check the fswatch part of the config (events known, one flag per list entry). */
export function checkFswatchConfig(cfg: Config): void {
  for (const e of cfg.fswatch.events)
    if (!FSWATCH_EVENTS.includes(e))
      throw new UsageError(`config: 'fswatch.events' entry '${e}' is not an fswatch event (one of ${FSWATCH_EVENTS.join(', ')})`);
  if (!cfg.fswatch.events.length) throw new UsageError(`config: 'fswatch.events' is empty: fswatch would report reads and opens too`);
  if (!Number.isInteger(cfg.fswatch.imageDirs) || cfg.fswatch.imageDirs < 0)
    throw new UsageError(`config: 'fswatch.imageDirs' must be a whole number >= 0`);
}

/** The fswatch@.service spec: config flags, one --event per config event, UpperDir + image roots. */
export function fswatchSpec(cfg: Config): UnitSpec {
  checkFswatchConfig(cfg);
  return {
    tool: TOOL,
    description: 'sneakpeek: file changes of container %i (fswatch on its UpperDir)',
    execStart: [
      cfg.paths.fswatch,
      ...cfg.fswatch.flags,
      ...cfg.fswatch.events.flatMap((e) => ['--event', e]),
      '--',
      { env: ENV_WATCH_DIR },
      { env: ENV_IMAGE_DIRS, split: true },
    ],
    env: [ENV_CONTAINER, ENV_WATCH_DIR, ENV_IMAGE_DIRS],
    // A first line in the log says whose paths follow: container path = path minus UpperDir.
    serviceExtra: [`ExecStartPre=/bin/echo "sneakpeek fswatch: container \${${ENV_CONTAINER}} UpperDir \${${ENV_WATCH_DIR}}"`],
    hardening: FSWATCH_HARDENING,
  };
}

/** Node-level step: the inotify limits, once per node script → INOTIFY record. */
export const inotifyStep = () => 'sp_inotify';

/** Step: one container's fswatch@<ID> env file, its facts from the engine (sp_fswatch). */
export function watchStep(cfg: Config, key: number, engine: Engine, name: string): string {
  return sh`sp_fswatch ${key} ${engine} ${name} ${cfg.fswatch.imageDirs} ${envDirOf(cfg, TOOL)}`;
}

/** The same from an inspect file (-f): no engine call on the node (sp_fswatch_known). */
export function knownWatchStep(cfg: Config, key: number, f: ContainerFacts): string {
  return sh`sp_fswatch_known ${key} ${instanceIdOf(f.id)} ${f.upperDir} ${f.lowerDirs.join(':')} ${f.driver} ${cfg.fswatch.imageDirs} ${envDirOf(cfg, TOOL)}`;
}

/**
 * Warnings about the node's inotify limits: every fswatch instance runs as root and shares
 * root's max_user_watches (one watch per directory) and max_user_instances (one each).
 */
export function inotifyWarnings(limits: { watches: number; instances: number } | undefined, dirs: number, instances: number): string[] {
  if (!limits) return [];
  const out: string[] = [];
  if (Number.isFinite(limits.watches) && limits.watches < dirs)
    out.push(
      `fs.inotify.max_user_watches is ${limits.watches}, below the ${dirs} directories to watch: fswatch will miss changes (raise it: sysctl -w fs.inotify.max_user_watches=${Math.max(dirs * 2, 524288)})`,
    );
  if (Number.isFinite(limits.instances) && limits.instances < instances)
    out.push(`fs.inotify.max_user_instances is ${limits.instances}, below the ${instances} fswatch instances: some will fail (raise it: sysctl -w fs.inotify.max_user_instances=${instances * 2})`);
  return out;
}

export interface FswatchEvent {
  time: string;
  /** Host path under UpperDir, as fswatch printed it. */
  hostPath: string;
  /** The same path inside the container (hostPath minus UpperDir), or undefined when outside it. */
  path: string | undefined;
  flags: string[];
}

/** Parse one log line of the default flags (`TIME PATH FLAG…`); the log's first line names UpperDir. */
export function parseFswatchLine(line: string, upperDir: string): FswatchEvent | undefined {
  // (`s`: a name may hold CR, U+2028 or U+2029, which `.` alone does not match)
  const m = /^(\S+) (.*?)((?: (?:[A-Z][A-Za-z]+))+)$/s.exec(line);
  if (!m) return undefined;
  const flags = m[3]!.trim().split(' ');
  if (!flags.every((f) => FSWATCH_EVENTS.includes(f))) return undefined;
  const hostPath = m[2]!;
  const up = upperDir.replace(/\/+$/, '');
  const path = hostPath === up ? '/' : hostPath.startsWith(`${up}/`) ? hostPath.slice(up.length) : undefined;
  return { time: m[1]!, hostPath, path, flags };
}

/** The UpperDir named by the log's ExecStartPre line, if this is that line. */
export function upperDirOfHeader(line: string): string | undefined {
  return /^sneakpeek fswatch: container \S* UpperDir (\/\S+)$/.exec(line)?.[1];
}
