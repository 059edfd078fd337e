// Node-side sh for `-t files` / `-t merged_dir`: the node only lists its overlay layers
// (find, stat, getfattr, sort — no Node.js there); lib/diff.ts computes the diff here.
//
// Records, all for container KEY (a small integer chosen by the operator side):
//   FACTS KEY DRIVER UPPER LOWER MERGED ID JSON   engine inspect, one per container
//   X KEY LAYER TEXT      getfattr -d dump of layer LAYER (0 = UpperDir, 1.. = LowerDir order)
//   R KEY LAYER MAJ MIN ./PATH   device numbers (hex) of char/block devices
//   F KEY LAYER TYPE MODE UID GID SIZE MTIME PATH   one entry; PATH relative, '' = the layer root
//   M KEY PATH            one path of the merged view (--all)
//   DONE KEY              the container's listing is complete
// F records of all layers of one container come sorted together in tree order: '/' is swapped
// with \001 (tr) before `sort -z`, so a directory's contents follow it directly.
import { shQuote } from './quote.ts';

export const XATTR_PATTERN = '^(trusted|user)\\.overlay\\.(opaque|whiteout)$|^security\\.capability$';

const LAYERS_FN = `sp_xattrs() { # KEY DIR...: X records, the xattrs find cannot print
  k=$1; shift
  if ! command -v getfattr >/dev/null 2>&1; then
    rec WARN "$k" "getfattr not found on this node (install the attr package): opaque directories, xattr whiteouts and file capabilities cannot be seen"
    return 0
  fi
  n=0; for d in "$@"; do
    printf 'X\\t%s\\t%s\\t' "$k" "$n"
    ( cd "$d" && getfattr -R -P -d -e hex -m ${shQuote(XATTR_PATTERN)} . 2>/dev/null )
    printf '\\0'; n=$((n+1))
  done
}
sp_layers() { # KEY UPPER LOWER(colon-separated)
  k=$1 up=$2 lowers=$3
  if [ ! -d "$up" ]; then rec ERR "$k" "UpperDir $up: not found on this node (container removed?)"; return 1; fi
  if ! ( cd "$up" && ls -A >/dev/null ) 2>/dev/null; then rec ERR "$k" "UpperDir $up: permission denied (run as root, or set sudo: true)"; return 1; fi
  set -- "$up"
  set -f; oldifs=$IFS; IFS=:; for l in $lowers; do set -- "$@" "$l"; done; IFS=$oldifs; set +f
  for l in "$@"; do
    if [ ! -d "$l" ]; then rec ERR "$k" "LowerDir $l: not found on this node (image layer removed?)"; return 1; fi
  done
  t="$sp_tmp/$k"; mkdir "$t" || { rec ERR "$k" "cannot create $t"; return 1; }
  # One find per layer lists every entry (F) and notes its devices (whose numbers find cannot
  # print); the xattr walk runs beside it on another core. The few X/R records go out first so
  # the diff knows them before it needs them. A failed walk or sort is an ERR, never a short
  # list; a file the container deletes while we walk is not a failure (-ignore_readdir_race).
  { sp_xattrs "$k" "$@" > "$t/x" &
    n=0; for d in "$@"; do
      ( cd "$d" && find . -ignore_readdir_race -printf "F\\t$k\\t$n\\t%y\\t%m\\t%U\\t%G\\t%s\\t%T@\\t%P\\0" \\( -type c -o -type b \\) -fprint0 "$t/dev$n" ) 2>>"$t/err" || echo "find failed in $d" >>"$t/err"
      n=$((n+1))
    done
    wait
  } | tr '/\\001' '\\001/' | sort -z -t "$TAB" -k10 -k3,3n > "$t/f" 2>>"$t/err" || echo "sort failed (is $sp_tmp full?)" >>"$t/err"
  if [ -s "$t/err" ]; then rec ERR "$k" "listing the layers failed: $(lastline "$(cat "$t/err")")"; rm -rf "$t"; return 1; fi
  n=0; for d in "$@"; do
    [ -s "$t/dev$n" ] && ( cd "$d" && xargs -0 stat --printf "R\\t$k\\t$n\\t%t\\t%T\\t%n\\0" < "$t/dev$n" ) >> "$t/x"
    n=$((n+1))
  done
  cat "$t/x" "$t/f"
  rm -rf "$t"
}`;

const MERGED_FN = `sp_merged() { # KEY MERGED: every path of the merged view
  if [ ! -d "$2" ]; then rec ERR "$1" "MergedDir $2: not mounted (is the container running?)"; return 1; fi
  if ! ( cd "$2" && find . -ignore_readdir_race -mindepth 1 -printf "M\\t$1\\t%P\\0" ) 2>"$sp_tmp/err" | tr '/\\001' '\\001/' | sort -z -t "$TAB" -k3 > "$sp_tmp/m$1" || [ -s "$sp_tmp/err" ]; then
    rec ERR "$1" "listing $2 failed: $(sp_err)"; return 1
  fi
  cat "$sp_tmp/m$1"; rm -f "$sp_tmp/m$1"
}`;

export interface LayerDirs {
  upperDir: string;
  lowerDirs: string[];
  mergedDir: string;
}

/** Step: list one container's layers whose dirs are already known (from an inspect file). */
export function listKnownStep(key: number, dirs: LayerDirs, all: boolean): string {
  if (all) return `sp_merged ${key} ${shQuote(dirs.mergedDir)} && rec DONE ${key}`;
  return `sp_layers ${key} ${shQuote(dirs.upperDir)} ${shQuote(dirs.lowerDirs.join(':'))} && rec DONE ${key}`;
}

/** Step: inspect container NAME on the node, then list its layers (or merged view). */
export function inspectAndListStep(key: number, name: string, all: boolean): string {
  const list = all ? `sp_merged ${key} "$sp_merged"` : `sp_layers ${key} "$sp_upper" "$sp_lower"`;
  return `if sp_inspect ${key} ${shQuote(name)}; then
  case $sp_driver in overlay|overlay2) ${list} && rec DONE ${key} ;; esac
fi`;
}

/** Step: only inspect (for -t merged_dir). */
export function inspectOnlyStep(key: number, name: string): string {
  return `sp_inspect ${key} ${shQuote(name)} && rec DONE ${key}`;
}

export const FILES_DEFS = [LAYERS_FN, MERGED_FN];
