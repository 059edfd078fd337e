// Mount-namespace inode ↔ the 8-byte key of BCC's mntnsmap (a u64 in the map's, i.e. the
// host's, byte order). Pure. An inode that is empty, zero, negative or not an integer is
// an error here, never a key: the original turned an empty answer into key 0.
import os from 'node:os';

export type ByteOrder = 'little' | 'big';

export const U64_MAX = (1n << 64n) - 1n;

/** This machine's byte order (the node's, when run on the node). */
export function hostOrder(): ByteOrder {
  return os.endianness() === 'LE' ? 'little' : 'big';
}

/**
 * A positive integer that fits in 64 bits, as bigint. Accepts a decimal string (what
 * `stat -c %i` prints), a safe-integer number, or a bigint; anything else throws.
 */
export function parseInode(value: string | number | bigint): bigint {
  let n: bigint;
  if (typeof value === 'bigint') n = value;
  else if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new RangeError(`inode ${String(value)} is not an integer (or too large for a number; pass a string or bigint)`);
    n = BigInt(value);
  } else {
    // As stat prints it: digits, no sign, no leading zero (the node-side check is the same).
    if (!/^(?:0|[1-9][0-9]*)$/.test(value)) throw new RangeError(`inode ${JSON.stringify(value)} is not a positive decimal integer`);
    n = BigInt(value);
  }
  if (n <= 0n) throw new RangeError(`inode ${n} is not positive: an inode of 0 or less would make a map key that filters nothing`);
  if (n > U64_MAX) throw new RangeError(`inode ${n} does not fit in 8 bytes`);
  return n;
}

/** The 8 key bytes as two-digit lower-case hex, in `order` (default: host order). */
export function inodeToHexBytes(inode: string | number | bigint, order: ByteOrder = hostOrder()): string[] {
  const n = parseInode(inode);
  const big = n.toString(16).padStart(16, '0').match(/../g)!;
  return order === 'big' ? big : big.reverse();
}

/** The key as bpftool takes it: `key hex 1b 00 …` → "1b 00 …". */
export function inodeToKeyHex(inode: string | number | bigint, order: ByteOrder = hostOrder()): string {
  return inodeToHexBytes(inode, order).join(' ');
}

/**
 * 8 key bytes back to the inode. Accepts bpftool's JSON form (["0x1b", "0x00", …]), bare
 * hex bytes (["1b", …]) or one string of them ("1b 00 …"). Any length but 8 bytes, or a
 * byte that is not hex, throws. Returns 0n for an all-zero key (the caller decides).
 */
export function hexBytesToInode(bytes: readonly string[] | string, order: ByteOrder = hostOrder()): bigint {
  const list = typeof bytes === 'string' ? bytes.trim().split(/\s+/).filter(Boolean) : [...bytes];
  if (list.length !== 8) throw new RangeError(`a mount-namespace key has 8 bytes, got ${list.length}`);
  const hex = list.map((b) => {
    const m = /^(?:0x)?([0-9a-fA-F]{1,2})$/.exec(b.trim());
    if (!m) throw new RangeError(`not a hex byte: ${JSON.stringify(b)}`);
    return m[1]!.padStart(2, '0').toLowerCase();
  });
  const big = order === 'big' ? hex : hex.reverse();
  return BigInt(`0x${big.join('')}`);
}
