import { describe, expect, it } from 'vitest';
import { hexBytesToInode, hostOrder, inodeToHexBytes, inodeToKeyHex, parseInode, U64_MAX } from '../../lib/endian.ts';

const MAX32 = 2n ** 32n - 1n;
const MAX53 = 2n ** 53n - 1n;

// inode → big-endian bytes; little endian is the same reversed.
const table: [string, bigint, string][] = [
  ['1', 1n, '00 00 00 00 00 00 00 01'],
  ['a real mount-ns inode', 4026532251n, '00 00 00 00 f0 00 01 9b'],
  ['2^32-1', MAX32, '00 00 00 00 ff ff ff ff'],
  ['2^32', MAX32 + 1n, '00 00 00 01 00 00 00 00'],
  ['2^53-1', MAX53, '00 1f ff ff ff ff ff ff'],
  ['2^64-1', U64_MAX, 'ff ff ff ff ff ff ff ff'],
  ['0x0102030405060708', 0x0102030405060708n, '01 02 03 04 05 06 07 08'],
];

describe('inode → 8 hex bytes', () => {
  it.each(table)('%s big endian', (_n, inode, big) => {
    expect(inodeToKeyHex(inode, 'big')).toBe(big);
    expect(inodeToKeyHex(inode.toString(), 'big')).toBe(big);
  });
  it.each(table)('%s little endian', (_n, inode, big) => {
    expect(inodeToHexBytes(inode, 'little')).toEqual(big.split(' ').reverse());
  });
  it.each(table)('%s round trip, both orders and the host order', (_n, inode) => {
    for (const order of ['little', 'big'] as const) expect(hexBytesToInode(inodeToHexBytes(inode, order), order)).toBe(inode);
    expect(hexBytesToInode(inodeToHexBytes(inode))).toBe(inode);
    expect(inodeToHexBytes(inode)).toEqual(inodeToHexBytes(inode, hostOrder()));
  });
  it('numbers up to 2^53-1 are taken as numbers', () => {
    expect(inodeToKeyHex(Number(MAX53), 'big')).toBe('00 1f ff ff ff ff ff ff');
    expect(inodeToKeyHex(4026532251, 'little')).toBe('9b 01 00 f0 00 00 00 00');
  });
});

describe('inodes that must never become a key', () => {
  it.each([
    ['empty string', ''],
    ['zero', '0'],
    ['zero number', 0],
    ['zero bigint', 0n],
    ['negative', '-5'],
    ['negative number', -5],
    ['negative bigint', -5n],
    ['fraction', '1.5'],
    ['fraction number', 1.5],
    ['NaN', Number.NaN],
    ['above 2^53-1 as a number', 2 ** 53],
    ['hex', '0x10'],
    ['leading zero', '012'],
    ['spaces', ' 12'],
    ['newline', '12\n'],
    ['2^64', (U64_MAX + 1n).toString()],
    ['2^64 bigint', U64_MAX + 1n],
    ['words', 'abc'],
  ] as [string, string | number | bigint][])('%s', (_n, v) => {
    expect(() => parseInode(v)).toThrow(RangeError);
    expect(() => inodeToHexBytes(v, 'little')).toThrow(RangeError);
  });
});

describe('bpftool key bytes → inode', () => {
  it.each([
    ['bpftool -j form', ['0x9b', '0x01', '0x00', '0xf0', '0x00', '0x00', '0x00', '0x00'], 'little', 4026532251n],
    ['bare bytes', ['00', '00', '00', '00', 'f0', '00', '01', '9b'], 'big', 4026532251n],
    ['one string', '9b 01 00 f0 00 00 00 00', 'little', 4026532251n],
    ['upper case, one digit', ['0x9B', '0x1', '0x0', '0xF0', '0', '0', '0', '0'], 'little', 4026532251n],
    ['all zero decodes to 0 (caller refuses it)', '00 00 00 00 00 00 00 00', 'big', 0n],
  ] as [string, string[] | string, 'little' | 'big', bigint][])('%s', (_n, bytes, order, want) => {
    expect(hexBytesToInode(bytes, order)).toBe(want);
  });
  it.each([
    ['7 bytes', ['00', '00', '00', '00', '00', '00', '01']],
    ['9 bytes', '00 00 00 00 00 00 00 00 01'],
    ['not hex', ['zz', '00', '00', '00', '00', '00', '00', '00']],
    ['three digits', ['100', '00', '00', '00', '00', '00', '00', '00']],
  ] as [string, string[] | string][])('%s is refused', (_n, bytes) => {
    expect(() => hexBytesToInode(bytes, 'big')).toThrow(RangeError);
  });
});
