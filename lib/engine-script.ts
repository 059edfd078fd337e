// Node-side sh functions that ask the container engine (docker, podman; crictl later) about
// one container. Each writes records (lib/records.ts) and returns 1 when the container is
// unknown or not usable, after an ERR record.
import type { Config, Engine } from './config.ts';
import { shQuote } from './quote.ts';

const FACTS_FORMAT =
  '{{.GraphDriver.Name}}{{"\\t"}}{{.GraphDriver.Data.UpperDir}}{{"\\t"}}{{.GraphDriver.Data.LowerDir}}{{"\\t"}}{{.GraphDriver.Data.MergedDir}}{{"\\t"}}{{json .}}';

function requireDockerLike(engine: Engine): void {
  if (engine === 'crictl') throw new Error('this engine function does not support crictl yet');
}

/**
 * sp_inspect KEY NAME → `FACTS KEY DRIVER UPPER LOWER MERGED JSON`; sets $sp_driver,
 * $sp_upper, $sp_lower, $sp_merged for the steps after it.
 */
export function inspectFn(cfg: Config): string {
  requireDockerLike(cfg.engine);
  return `sp_inspect() { # KEY NAME
  if ! out=$(${shQuote(cfg.paths[cfg.engine])} inspect --type container --format ${shQuote(FACTS_FORMAT)} -- "$2" 2>&1); then
    rec ERR "$1" "$(lastline "$out")"; return 1
  fi
  sp_driver=$(printf '%s\\n' "$out" | head -n1 | cut -f1)
  sp_upper=$(printf '%s\\n' "$out" | head -n1 | cut -f2)
  sp_lower=$(printf '%s\\n' "$out" | head -n1 | cut -f3)
  sp_merged=$(printf '%s\\n' "$out" | head -n1 | cut -f4)
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
  requireDockerLike(cfg.engine);
  return `sp_ns() { # KEY NAME
  if ! out=$(${shQuote(cfg.paths[cfg.engine])} inspect --type container --format '{{.Id}} {{.State.Pid}} {{.State.Running}}' -- "$2" 2>&1); then
    rec ERR "$1" "$(lastline "$out")"; return 1
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
 * sp_cid KEY NAME → $sp_cid: the container's 12-hex-char id (unit instance ids). When the
 * engine no longer knows NAME (container removed) and NAME itself is an id of 12+ hex
 * characters, its first 12 are taken, so teardown still finds the instance. Else ERR, 1.
 */
export function cidFn(cfg: Config): string {
  requireDockerLike(cfg.engine);
  return `sp_cid() { # KEY NAME
  if out=$(${shQuote(cfg.paths[cfg.engine])} inspect --type container --format '{{.Id}}' -- "$2" 2>&1); then
    sp_cid=$(printf '%s\\n' "$out" | head -n1 | cut -c1-12)
  else
    case $2 in *[!0-9a-f]*|'') rec ERR "$1" "$(lastline "$out")"; return 1 ;; esac
    if [ \${#2} -lt 12 ]; then rec ERR "$1" "$(lastline "$out")"; return 1; fi
    sp_cid=$(printf '%s' "$2" | cut -c1-12)
  fi
  case $sp_cid in *[!0-9a-f]*|'') rec ERR "$1" "engine gave no usable id for $2: '$sp_cid'"; return 1 ;; esac
  if [ \${#sp_cid} -ne 12 ]; then rec ERR "$1" "engine gave no usable id for $2: '$sp_cid'"; return 1; fi
}`;
}
