// Node-side sh functions that ask the container engine (docker, podman, crictl) about one
// container. Each writes records (lib/wire.ts) and returns 1 after an ERR record when the
// container is unknown or not usable (sp_inspect reports a non-overlay driver through its
// FACTS record; the operator side names it). Engine stderr never mixes into what is parsed.
//
// crictl (containerd, CRI-O) has no GraphDriver: `crictl inspect` gives the id, state and
// `.info.pid`; the overlay layers come from the root mount in /proc/PID/mountinfo, the merged
// dir from the host's mount of the same upperdir (else /proc/PID/root). No jq on nodes: the
// few fields are picked with grep -o from crictl's JSON; lib/crictl.ts reads the rest here.
import type { Config } from './config.ts';
import { shQuote } from './quote.ts';

const FACTS_FORMAT =
  '{{.GraphDriver.Name}}{{"\\t"}}{{.GraphDriver.Data.UpperDir}}{{"\\t"}}{{.GraphDriver.Data.LowerDir}}{{"\\t"}}{{.GraphDriver.Data.MergedDir}}{{"\\t"}}{{.Id}}{{"\\t"}}{{json .}}';

/** Functions the crictl variants share; defined with each (a redefinition is harmless). */
export const CRICTL_HELPERS = `sp_crictl() { # NAME: crictl inspect → $out; $sp_id $sp_pid $sp_state picked from its JSON
  if ! sp_q CRICTL inspect -o json -- "$1"; then out=$(sp_err); return 1; fi
  sp_id=$(printf '%s\\n' "$out" | grep -o '"id": *"[^"]*"' | head -n1 | cut -d'"' -f4)
  sp_pid=$(printf '%s\\n' "$out" | grep -o '"pid": *[0-9][0-9]*' | head -n1 | tr -cd '0-9')
  sp_state=$(printf '%s\\n' "$out" | grep -o '"state": *"[A-Z_]*"' | head -n1 | cut -d'"' -f4)
  if [ -z "$sp_id" ]; then out="crictl inspect $1: no container id in its output"; return 1; fi
}
sp_overlay_dirs() { # MOUNTINFO: the root mount's overlay layers → $sp_driver $sp_upper $sp_lower
  sp_opts=$(awk '$5 == "/" { for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i+1) == "overlay") print $(i+3); exit } }' "$1" 2>/dev/null | tail -n1)
  [ -n "$sp_opts" ] || return 1
  sp_driver=overlay
  sp_upper=$(printf '%s\\n' "$sp_opts" | tr ',' '\\n' | sed -n 's/^upperdir=//p' | head -n1)
  sp_lower=$(printf '%s\\n' "$sp_opts" | tr ',' '\\n' | sed -n 's/^lowerdir+*=//p' | tr '\\n' ':' | tr -s ':' | sed 's/^://; s/:$//')
  [ -n "$sp_upper" ]
}
sp_mountpoint_of() { # MOUNTINFO UPPER: where the host mounts the overlay with that upperdir
  awk -v want="upperdir=$2" '{ for (i = 7; i <= NF; i++) if ($i == "-") { n = split($(i+3), o, ","); for (j = 1; j <= n; j++) if (o[j] == want) { print $5; exit } } }' "$1" 2>/dev/null
}`;

const crictlHelpers = (cfg: Config) => CRICTL_HELPERS.replace('CRICTL', () => shQuote(cfg.paths.crictl));

/** The running check and pid check every crictl function makes after sp_crictl. */
const CRICTL_RUNNING = `if [ "$sp_state" != CONTAINER_RUNNING ]; then rec ERR "$1" "container $2 is not running (\${sp_state:-state unknown})"; return 1; fi
  case $sp_pid in ''|0|*[!0-9]*) rec ERR "$1" "container $2 has no main process (pid '$sp_pid')"; return 1 ;; esac`;

/**
 * sp_inspect KEY NAME → `FACTS KEY DRIVER UPPER LOWER MERGED ID JSON`; sets $sp_driver,
 * $sp_upper, $sp_lower, $sp_merged and $sp_id (full container id) for the steps after it.
 */
export function inspectFn(cfg: Config): string {
  if (cfg.engine === 'crictl')
    return `${crictlHelpers(cfg)}
sp_inspect() { # KEY NAME (crictl: FACTS KEY overlay UPPER LOWER MERGED CRICTL-JSON)
  if ! sp_crictl "$2"; then rec ERR "$1" "$(lastline "$out")"; return 1; fi
  ${CRICTL_RUNNING}
  if ! sp_overlay_dirs "/proc/$sp_pid/mountinfo"; then rec ERR "$1" "container $2: its root (/proc/$sp_pid/mountinfo) is not an overlay mount"; return 1; fi
  sp_merged=$(sp_mountpoint_of /proc/1/mountinfo "$sp_upper")
  [ -n "$sp_merged" ] || sp_merged=/proc/$sp_pid/root
  rec FACTS "$1" "$sp_driver" "$sp_upper" "$sp_lower" "$sp_merged" "$sp_id" "$out"
}`;
  return `sp_inspect() { # KEY NAME
  if ! sp_q ${shQuote(cfg.paths[cfg.engine])} inspect --type container --format ${shQuote(FACTS_FORMAT)} -- "$2"; then
    rec ERR "$1" "$(sp_err)"; return 1
  fi
  sp_driver=$(printf '%s\\n' "$out" | head -n1 | cut -f1)
  sp_upper=$(printf '%s\\n' "$out" | head -n1 | cut -f2)
  sp_lower=$(printf '%s\\n' "$out" | head -n1 | cut -f3)
  sp_merged=$(printf '%s\\n' "$out" | head -n1 | cut -f4)
  sp_id=$(printf '%s\\n' "$out" | head -n1 | cut -f5)
  printf 'FACTS\\t%s\\t%s\\0' "$1" "$out"
}`;
}

/**
 * sp_ns KEY NAME → `NS KEY ID PID INODE`: the full container id, its main process, and the
 * inode of /proc/PID/ns/mnt (followed, like stat -L). Sets $sp_id $sp_pid $sp_ino.
 * A stopped container, a pid or inode that is not a positive integer → ERR, return 1:
 * an empty inode must never become map key 0.
 */
export function nsFn(cfg: Config): string {
  const ino = `if ! sp_ino=$(stat -Lc %i "/proc/$sp_pid/ns/mnt" 2>&1); then
    rec ERR "$1" "cannot read /proc/$sp_pid/ns/mnt: $(lastline "$sp_ino")"; return 1
  fi
  case $sp_ino in ''|0|*[!0-9]*) rec ERR "$1" "bad mount namespace inode '$sp_ino' for pid $sp_pid"; return 1 ;; esac
  rec NS "$1" "$sp_id" "$sp_pid" "$sp_ino"`;
  if (cfg.engine === 'crictl')
    return `${crictlHelpers(cfg)}
sp_ns() { # KEY NAME (crictl: .info.pid)
  if ! sp_crictl "$2"; then rec ERR "$1" "$(lastline "$out")"; return 1; fi
  ${CRICTL_RUNNING}
  ${ino}
}`;
  return `sp_ns() { # KEY NAME
  if ! sp_q ${shQuote(cfg.paths[cfg.engine])} inspect --type container --format '{{.Id}} {{.State.Pid}} {{.State.Running}}' -- "$2"; then
    rec ERR "$1" "$(sp_err)"; return 1
  fi
  sp_id=\${out%% *}; rest=\${out#* }; sp_pid=\${rest%% *}; running=\${rest#* }
  if [ "$running" != true ]; then rec ERR "$1" "container $2 is not running"; return 1; fi
  case $sp_pid in ''|0|*[!0-9]*) rec ERR "$1" "container $2 has no main process (pid '$sp_pid')"; return 1 ;; esac
  if ! sp_ino=$(stat -Lc %i "/proc/$sp_pid/ns/mnt" 2>&1); then
    rec ERR "$1" "cannot read /proc/$sp_pid/ns/mnt: $(lastline "$sp_ino")"; return 1
  fi
  case $sp_ino in ''|0|*[!0-9]*) rec ERR "$1" "bad mount namespace inode '$sp_ino' for pid $sp_pid"; return 1 ;; esac
  rec NS "$1" "$sp_id" "$sp_pid" "$sp_ino"
}`;
}

/**
 * sp_cid KEY NAME → $sp_cid: the container's 12-hex-char id (unit instance ids); also defines
 * sp_short KEY ID, the same from an id already known (after sp_inspect: "$sp_id"). When the
 * engine no longer knows NAME (container removed) and NAME itself is an id of 12+ hex
 * characters, its first 12 are taken, so teardown still finds the instance. Else ERR, 1.
 */
export function cidFn(cfg: Config): string {
  const query =
    cfg.engine === 'crictl'
      ? `if sp_crictl "$2"; then
    sp_cid=$sp_id`
      : `if sp_q ${shQuote(cfg.paths[cfg.engine])} inspect --type container --format '{{.Id}}' -- "$2"; then
    sp_cid=$(printf '%s\\n' "$out" | head -n1)`;
  return `${cfg.engine === 'crictl' ? `${crictlHelpers(cfg)}\n` : ''}sp_cid() { # KEY NAME
  ${query}
  else
    [ -n "$out" ] || out=$(sp_err) # docker's reason is on stderr; sp_crictl already put it in $out
    case $2 in *[!0-9a-f]*|'') rec ERR "$1" "$(lastline "$out")"; return 1 ;; esac
    if [ \${#2} -lt 12 ]; then rec ERR "$1" "$(lastline "$out")"; return 1; fi
    sp_cid=$2
  fi
  sp_short "$1" "$sp_cid"
}
sp_short() { # KEY ID → $sp_cid: ID's first 12 characters, which must be hex (a unit instance id)
  sp_cid=$(printf '%s' "$2" | cut -c1-12)
  case $sp_cid in *[!0-9a-f]*|'') rec ERR "$1" "engine gave no usable id: '$2'"; return 1 ;; esac
  if [ \${#sp_cid} -ne 12 ]; then rec ERR "$1" "engine gave no usable id: '$2'"; return 1; fi
}`;
}
