// Node-side sh for BCC's mount-namespace filter maps (`--mntnsmap FILE`): a pinned hash
// map, key 8 bytes = the inode of /proc/PID/ns/mnt in the node's byte order, value 4 bytes
// of zero. Used by bpftool_map_container_ns and by `sneakpeek -t procmon|tcptracer` inside
// their one-session-per-node scripts.
//
// Records:
//   MAP KEY FILE STATE ORDER PRUNED DUMP   STATE created | added | present; ORDER little | big
//                                          (the node's); PRUNED keys removed (0 unless asked);
//                                          DUMP = `bpftool -j map dump pinned FILE`
//   MAPGONE KEY FILE STATE                 teardown: removed | absent | kept (still used)
//   ERR KEY MESSAGE                        bpftool missing, no bpffs, map full, no privilege, …
import path from 'node:path';
import type { Config } from './config.ts';
import { UsageError } from './errors.ts';
import { hexBytesToInode, parseInode, type ByteOrder } from './endian.ts';
import { shQuote } from './quote.ts';
import { utf8 } from './wire.ts';

/** The kernel's map-name limit: BPF_OBJ_NAME_LEN (16) minus the NUL. */
export const MAP_NAME_MAX = 15;

/**
 * The kernel name of a map pinned at FILE: FILE's basename with every character the kernel
 * refuses (anything but letters, digits, '_' and '.') replaced by '_', then its LAST 15
 * characters — the end is what tells maps apart (`mnt_ns_0123456789ab` → `ns_0123456789ab`).
 */
export function mapNameOf(file: string): string {
  return path.posix.basename(file).replace(/[^A-Za-z0-9_.]/g, '_').slice(-MAP_NAME_MAX);
}

/** A map file given by a user: absolute, one plain basename, no `..`. */
export function checkMapFile(file: string): string {
  if (!file.startsWith('/') || file.endsWith('/')) throw new UsageError(`map file ${JSON.stringify(file)} must be an absolute path to a file (e.g. /sys/fs/bpf/mnt_ns_set)`);
  if (file.split('/').includes('..')) throw new UsageError(`map file ${JSON.stringify(file)} must not contain '..'`);
  if (/[\x00-\x1f\x7f]/.test(file)) throw new UsageError(`map file ${JSON.stringify(file)} contains a control character`);
  if (!/^[A-Za-z0-9_.:-]+$/.test(path.posix.basename(file)) || path.posix.basename(file).startsWith('.'))
    throw new UsageError(`map file name ${JSON.stringify(path.posix.basename(file))}: expected letters, digits and _.:- (it names the unit instance)`);
  return file;
}

/**
 * sp_mapkey INODE → $sp_key ("1b 00 …", the node's byte order) and $sp_order. Returns 1 for
 * anything but a positive decimal integer without leading zeros (never a key of 0).
 */
const MAPKEY_FN = `sp_mapkey() { # INODE
  case $1 in ''|0*|*[!0-9]*) return 1 ;; esac
  # above 2^64-1: some shells' printf clamps silently instead of failing
  [ \${#1} -le 20 ] || return 1
  if [ \${#1} -eq 20 ] && [ "$(printf '%s\\n' "$1" 18446744073709551615 | LC_ALL=C sort | tail -n1)" != 18446744073709551615 ]; then return 1; fi
  h=$(printf '%016x' "$1" 2>/dev/null) || return 1
  case $h in *[!0-9a-f]*) return 1 ;; esac
  [ \${#h} -eq 16 ] || return 1
  if [ "$(printf '\\001\\000' | od -An -tu2 | tr -d ' ')" = 1 ]; then sp_order=little; else sp_order=big; fi
  sp_key=$(printf '%s\\n' "$h" | sed 's/../& /g; s/ $//')
  if [ "$sp_order" = little ]; then sp_key=$(printf '%s\\n' $sp_key | awk '{ b[NR] = $0 } END { for (i = NR; i > 0; i--) printf "%s%s", b[i], (i > 1 ? " " : "") }'); fi
}`;

/** `bpftool …` failed: its last line, with a hint for the usual causes. */
const BPFERR_FN = `sp_bpferr() { # OUTPUT → $sp_bpferr
  sp_bpferr=$(lastline "$1")
  case $sp_bpferr in *"Operation not permitted"*|*"Permission denied"*) sp_bpferr="$sp_bpferr (needs root: CAP_BPF/CAP_SYS_ADMIN)" ;; esac
}`;

function mapFn(cfg: Config): string {
  return `sp_map() { # KEY FILE NAME INODE PRUNE(0|1)
  k=$1 f=$2 ino=$4 bt=${shQuote(cfg.paths.bpftool)}
  if ! command -v "$bt" >/dev/null 2>&1; then rec ERR "$k" "bpftool not found on this node ('$bt': install bpftool or set paths.bpftool)"; return 1; fi
  if ! sp_mapkey "$ino"; then rec ERR "$k" "refusing mount namespace inode '$ino': not a positive integer"; return 1; fi
  d=$(dirname -- "$f")
  if [ "$(stat -f -c %T -- "$d" 2>/dev/null)" != bpf_fs ]; then rec ERR "$k" "$d is not a mounted BPF file system (mount -t bpf bpf /sys/fs/bpf)"; return 1; fi
  state=present made=0
  if [ -e "$f" ]; then
    if ! out=$("$bt" map show pinned "$f" 2>&1); then sp_bpferr "$out"; rec ERR "$k" "$f: $sp_bpferr"; return 1; fi
    case $out in *" hash "*"key 8B"*"value 4B"*) ;;
      *) rec ERR "$k" "$f exists but is not a mount-namespace map (hash, key 8, value 4): $(printf '%s\\n' "$out" | head -n1)"; return 1 ;; esac
  else
    if ! out=$("$bt" map create "$f" type hash key 8 value 4 entries 128 name "$3" flags 0 2>&1); then
      sp_bpferr "$out"; rec ERR "$k" "cannot create map $f: $sp_bpferr"; return 1
    fi
    state=created made=1
  fi
  # shellcheck disable=SC2086 # $sp_key is 8 separate hex bytes
  if ! "$bt" map lookup pinned "$f" key hex $sp_key >/dev/null 2>&1; then
    if ! out=$("$bt" map update pinned "$f" key hex $sp_key value hex 00 00 00 00 noexist 2>&1); then
      case $out in *"Argument list too long"*) sp_bpferr="map $f is full" ;; *) sp_bpferr "$out"; sp_bpferr="cannot add key to $f: $sp_bpferr" ;; esac
      [ $made = 1 ] && rm -f -- "$f"
      rec ERR "$k" "$sp_bpferr"; return 1
    fi
    [ $state = created ] || state=added
  fi
  pruned=0
  if [ "$5" = 1 ]; then
    for other in $("$bt" map dump pinned "$f" 2>/dev/null | awk '$1 == "key:" && NF >= 9 { print $2 "_" $3 "_" $4 "_" $5 "_" $6 "_" $7 "_" $8 "_" $9 }'); do
      other=$(printf '%s' "$other" | tr _ ' ')
      [ "$other" = "$sp_key" ] && continue
      # shellcheck disable=SC2086
      if out=$("$bt" map delete pinned "$f" key hex $other 2>&1); then pruned=$((pruned + 1)); else sp_bpferr "$out"; rec WARN "$k" "cannot remove stale key $other from $f: $sp_bpferr"; fi
    done
  fi
  if ! dump=$("$bt" -j map dump pinned "$f" 2>&1); then sp_bpferr "$dump"; rec ERR "$k" "cannot read back $f: $sp_bpferr"; return 1; fi
  rec MAP "$k" "$f" "$state" "$sp_order" "$pruned" "$(printf '%s' "$dump" | tr '\\t\\n' '  ')"
}`;
}

/**
 * sp_unmap KEY FILE [ENVFILE…]: remove the pinned map FILE unless one of the ENVFILEs
 * (instances of other tools that read the same map) still exists → MAPGONE record.
 */
const UNMAP_FN = `sp_unmap() { # KEY FILE ENVFILE…
  k=$1 f=$2; shift 2
  for e in "$@"; do
    if [ -e "$e" ]; then rec MAPGONE "$k" "$f" kept; return 0; fi
  done
  if [ ! -e "$f" ]; then rec MAPGONE "$k" "$f" absent; return 0; fi
  if ! out=$(rm -f -- "$f" 2>&1); then rec ERR "$k" "cannot remove $f: $(lastline "$out")"; return 1; fi
  rec MAPGONE "$k" "$f" removed
}`;

/** The sh functions a node script needs for maps (pass to nodeScript). */
export function mapDefs(cfg: Config): string[] {
  return [MAPKEY_FN, BPFERR_FN, mapFn(cfg), UNMAP_FN];
}

/** A value for a step: a literal, or the name of a sh variable an earlier step set. */
export type ShValue = string | { shVar: string };

function word(v: ShValue): string {
  if (typeof v === 'string') return shQuote(v);
  if (!/^[a-z_][a-z0-9_]*$/.test(v.shVar)) throw new Error(`bad sh variable ${v.shVar}`);
  return `"$${v.shVar}"`;
}

/** Step: make sure FILE holds INODE's key (create / add), read it back → MAP record. */
export function mapStep(key: number, file: ShValue, name: ShValue, inode: ShValue, prune: boolean): string {
  if (typeof inode === 'string') parseInode(inode);
  return `sp_map ${key} ${word(file)} ${word(name)} ${word(inode)} ${prune ? 1 : 0}`;
}

/** Step: teardown of FILE, kept while any of `usedBy` (env files of other tools) exists. */
export function unmapStep(key: number, file: ShValue, usedBy: ShValue[] = []): string {
  return `sp_unmap ${key} ${word(file)}${usedBy.map((u) => ` ${word(u)}`).join('')}`;
}

export interface MapResult {
  file: string;
  state: 'created' | 'added' | 'present';
  order: ByteOrder;
  pruned: number;
  /** Every inode the map holds after the step, decoded in the node's byte order. */
  inodes: bigint[];
}

/** Parse the fields after `MAP KEY` (see mapFn). Throws on a malformed dump. */
export function parseMapRecord(fields: readonly string[]): MapResult {
  const [file = '', state = '', order = '', pruned = '0', dump = ''] = fields;
  if (state !== 'created' && state !== 'added' && state !== 'present') throw new Error(`bad map state '${state}'`);
  if (order !== 'little' && order !== 'big') throw new Error(`bad byte order '${order}'`);
  let entries: unknown;
  try {
    entries = JSON.parse(utf8(dump));
  } catch {
    throw new Error(`bpftool -j map dump of ${file} is not JSON: ${utf8(dump).slice(0, 120)}`);
  }
  if (!Array.isArray(entries)) throw new Error(`bpftool -j map dump of ${file}: expected a list`);
  const inodes = entries.map((e: unknown) => {
    const k = (e as { key?: unknown }).key;
    if (!Array.isArray(k)) throw new Error(`bpftool -j map dump of ${file}: an entry without a key`);
    return hexBytesToInode(k as string[], order);
  });
  return { file: utf8(file), state, order, pruned: Number(pruned) || 0, inodes };
}

/**
 * The check after setup: the map must hold INODE (decoded here, independently of the sh that
 * wrote it). With `exact`, nothing else either. Returns an error message, or undefined.
 */
export function checkMapHolds(r: MapResult, inode: string | bigint, exact: boolean): string | undefined {
  const want = parseInode(inode);
  if (!r.inodes.includes(want)) return `map ${r.file} does not hold inode ${want} after the update (holds: ${r.inodes.join(', ') || 'nothing'})`;
  if (exact && r.inodes.length !== 1) return `map ${r.file} holds other inodes besides ${want}: ${r.inodes.filter((i) => i !== want).join(', ')}`;
  return undefined;
}
