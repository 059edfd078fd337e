// BCC's mount-namespace filter maps (`--mntnsmap FILE`): a pinned hash map, key 8 bytes = the
// inode of /proc/PID/ns/mnt in the node's byte order, value 4 bytes of zero. The node side is
// scripts/bpftool_map_container_ns.sh (sp_map, sp_unmap); here: map names and files, the steps
// that call them, and the check of what the node read back (the MAP record's bpftool -j dump).
import path from 'node:path';
import { UsageError } from './errors.ts';
import { hexBytesToInode, parseInode, type ByteOrder } from './endian.ts';
import { sh } from './quote.ts';
import { utf8, type RecordOf } from './wire.ts';

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

/** Step: make sure FILE holds INODE's key (create / add), read it back → MAP record. */
export function mapStep(key: number, file: string, name: string, inode: string, prune: boolean): string {
  parseInode(inode);
  return sh`sp_map ${key} ${file} ${name} ${inode} ${prune ? 1 : 0}`;
}

/** Step: teardown of FILE, kept while any of `usedBy` (env files of other tools) exists. */
export function unmapStep(key: number, file: string, usedBy: string[] = []): string {
  return sh`sp_unmap ${key} ${file} ${usedBy}`;
}

export interface MapResult {
  file: string;
  state: 'created' | 'added' | 'present';
  order: ByteOrder;
  pruned: number;
  /** Every inode the map holds after the step, decoded in the node's byte order. */
  inodes: bigint[];
}

/** Read a MAP record (sp_map). Throws on a malformed dump. */
export function parseMapRecord(r: Omit<RecordOf<'MAP'>, 'tag' | 'key'>): MapResult {
  const { file, state, order, pruned, dump } = r;
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
