// `-t fswatch`: the fswatch@.service spec and the node-side sh that finds what to watch.
// Pure: config in, unit spec / sh text out; lib/units.ts installs and runs the instances.
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
import type { Config } from './config.ts';
import { UsageError } from './errors.ts';
import { shQuote } from './quote.ts';
import type { UnitSpec } from './units.ts';

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

/**
 * sp_fswatch_dirs KEY MAX: after sp_inspect (sets $sp_driver $sp_upper $sp_lower), check the
 * UpperDir and collect what fswatch watches → $sp_imgdirs, WATCH record. Returns 1 after ERR.
 */
export const WATCH_FN = `sp_fswatch_dirs() { # KEY MAX
  case $sp_driver in overlay|overlay2) ;; *) rec ERR "$1" "storage driver '$sp_driver' is not overlay/overlay2: no UpperDir to watch"; return 1 ;; esac
  case $sp_upper in /*) ;; *) rec ERR "$1" "engine gave no UpperDir"; return 1 ;; esac
  case $sp_upper in *[!A-Za-z0-9._+@:,=/-]*) rec ERR "$1" "UpperDir '$sp_upper' has characters a unit env file cannot hold"; return 1 ;; esac
  if [ ! -d "$sp_upper" ]; then rec ERR "$1" "UpperDir $sp_upper: not found on this node (container removed?)"; return 1; fi
  dirs=$(find "$sp_upper" -xdev -type d 2>/dev/null | wc -l | tr -d ' ')
  sp_imgdirs=
  n=0
  if [ "$2" -gt 0 ]; then
    sp_imgdirs=$(
      oldifs=$IFS; IFS=:; set -f
      for l in $sp_lower; do [ -d "$l" ] && find "$l" -mindepth 1 -xdev -type d -printf '%d %P\\n' 2>/dev/null; done
      IFS=$oldifs
    ) 
    sp_imgdirs=$(printf '%s\\n' "$sp_imgdirs" | grep -E '^[0-9]+ [A-Za-z0-9._+@:,=/-]+$' | sort -n -k1,1 -k2 | awk '!seen[$2]++ { print $2 }' | head -n "$2" | sed "s|^|$sp_upper/|" | tr '\\n' ' ' | sed 's/ $//')
    n=$(printf '%s' "$sp_imgdirs" | wc -w | tr -d ' ')
  fi
  rec WATCH "$1" "$sp_upper" "$dirs" "$n"
}`;

/** Node-level: the inotify limits, once per node script. */
export const INOTIFY_STEP = `rec INOTIFY - "$(cat /proc/sys/fs/inotify/max_user_watches 2>/dev/null)" "$(cat /proc/sys/fs/inotify/max_user_instances 2>/dev/null)"`;

/** Step: find container NAME's id, UpperDir and image dirs with one inspect (sp_inspect, sp_short must be defined). */
export function watchStep(key: number, name: string, imageDirs: number): string {
  return `sp_inspect ${key} ${shQuote(name)} && sp_short ${key} "$sp_id" && sp_fswatch_dirs ${key} ${imageDirs}`;
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
  const m = /^(\S+) (.*?)((?: (?:[A-Z][A-Za-z]+))+)$/.exec(line);
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
