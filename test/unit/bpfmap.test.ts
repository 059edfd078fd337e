import { describe, expect, it } from 'vitest';
import { checkMapFile, checkMapHolds, mapNameOf, mapStep, parseMapRecord, unmapStep, MAP_NAME_MAX } from '../../lib/bpfmap.ts';
import { DEFAULTS } from '../../lib/config.ts';
import { hostOrder, inodeToKeyHex, U64_MAX } from '../../lib/endian.ts';
import { sh } from '../../lib/quote.ts';
import { runSteps, SHELLS } from '../helpers/node-sh.ts';

/** Run sp_mapkey in a real shell; "KEY|ORDER" or "refused". */
function shKey(shell: string, inode: string): string {
  const r = runSteps([sh`if sp_mapkey ${inode}; then printf '%s|%s' "$sp_key" "$sp_order"; else printf refused; fi`], { libs: ['bpftool_map_container_ns'], shell, cfg: DEFAULTS });
  expect(r.code).toBe(0);
  return r.stdout.toString('utf8');
}

const shells = SHELLS;

describe('the node computes the same key as lib/endian', () => {
  const good = ['1', '4026532251', String(2n ** 32n - 1n), String(2n ** 32n), String(2n ** 53n - 1n), String(U64_MAX)];
  it.each(shells.flatMap((sh) => good.map((i) => [sh, i])))('%s: %s', (sh, inode) => {
    expect(shKey(sh, inode)).toBe(`${inodeToKeyHex(inode)}|${hostOrder()}`);
  });
  const bad = ['', '0', '00', '012', '-1', '1.5', '0x10', 'abc', '1 2', String(U64_MAX + 1n), '99999999999999999999999', '$(touch /tmp/sp-mon-canary)'];
  it.each(shells.flatMap((sh) => bad.map((i) => [sh, i])))('%s refuses %j', (sh, inode) => {
    expect(shKey(sh, inode)).toBe('refused');
  });
});

describe('map names (kernel limit 15: the last 15 characters, refused characters → _)', () => {
  it.each([
    ['/sys/fs/bpf/mnt_ns_set', 'mnt_ns_set'],
    ['/sys/fs/bpf/mnt_ns_0123456789ab', 'ns_0123456789ab'],
    ['/sys/fs/bpf/a-b:c', 'a_b_c'],
    ['/x/exactly_15_chars', 'xactly_15_chars'],
    ['/x/fifteen_chars', 'fifteen_chars'],
  ])('%s → %s', (file, name) => {
    expect(mapNameOf(file)).toBe(name);
    expect(mapNameOf(file).length).toBeLessThanOrEqual(MAP_NAME_MAX);
  });
});

describe('map files given by users', () => {
  it.each(['/sys/fs/bpf/mnt_ns_set', '/sys/fs/bpf/sub/mnt_ns_0123456789ab'])('%s is fine', (f) => {
    expect(checkMapFile(f)).toBe(f);
  });
  it.each(['mnt_ns_set', '/sys/fs/bpf/', '/sys/fs/bpf/../etc/x', '/sys/fs/bpf/a b', '/sys/fs/bpf/a;b', '/sys/fs/bpf/.hidden', '/sys/fs/bpf/a\nb', '/sys/fs/bpf/$(x)'])(
    '%j is refused',
    (f) => {
      expect(() => checkMapFile(f)).toThrow(/map file/);
    },
  );
});

describe('steps quote every value', () => {
  it('literal values', () => {
    expect(mapStep(3, '/sys/fs/bpf/mnt_ns_x', 'mnt_ns_x', '4026532251', true)).toBe('sp_map 3 /sys/fs/bpf/mnt_ns_x mnt_ns_x 4026532251 1');
    expect(unmapStep(3, "/sys/fs/bpf/it's", ['/etc/sneakpeek/tcptracer/0123456789ab.env'])).toBe(
      "sp_unmap 3 '/sys/fs/bpf/it'\\''s' /etc/sneakpeek/tcptracer/0123456789ab.env",
    );
  });
  it('an inode that is not one is refused before any script is built', () => {
    expect(() => mapStep(1, '/sys/fs/bpf/m', 'm', '', false)).toThrow(RangeError);
    expect(() => mapStep(1, '/sys/fs/bpf/m', 'm', '0', false)).toThrow(RangeError);
  });
});

/** A MAP record's fields from a list (file, state, order, pruned, dump). */
const mapRec = ([file = '', state = '', order = '', pruned = '', dump = '']: string[]) => ({ file, state, order, pruned, dump });

describe('reading the map back', () => {
  const dump = JSON.stringify([{ key: ['0x9b', '0x01', '0x00', '0xf0', '0x00', '0x00', '0x00', '0x00'], value: ['0x00', '0x00', '0x00', '0x00'] }]);
  it('decodes the dump in the node byte order', () => {
    const r = parseMapRecord(mapRec(['/sys/fs/bpf/m', 'created', 'little', '0', dump]));
    expect(r).toEqual({ file: '/sys/fs/bpf/m', state: 'created', order: 'little', pruned: 0, inodes: [4026532251n] });
    expect(checkMapHolds(r, '4026532251', true)).toBeUndefined();
    expect(checkMapHolds(r, '4026532252', false)).toMatch(/does not hold inode 4026532252.*holds: 4026532251/);
  });
  it('the same bytes read big-endian are another inode: the check fails', () => {
    const r = parseMapRecord(mapRec(['/sys/fs/bpf/m', 'present', 'big', '0', dump]));
    expect(checkMapHolds(r, '4026532251', false)).toMatch(/does not hold/);
  });
  it('exact: another key in the map is an error', () => {
    const two = JSON.stringify([...JSON.parse(dump), { key: ['0x01', '0', '0', '0', '0', '0', '0', '0'], value: ['0', '0', '0', '0'] }]);
    const r = parseMapRecord(mapRec(['/sys/fs/bpf/m', 'present', 'little', '0', two]));
    expect(checkMapHolds(r, '4026532251', false)).toBeUndefined();
    expect(checkMapHolds(r, '4026532251', true)).toMatch(/other inodes besides 4026532251: 1$/);
  });
  it.each([
    [['/m', 'made', 'little', '0', '[]']],
    [['/m', 'present', 'middle', '0', '[]']],
    [['/m', 'present', 'little', '0', 'Error: bpf obj get']],
    [['/m', 'present', 'little', '0', '{"key":[]}']],
    [['/m', 'present', 'little', '0', '[{"value":[]}]']],
  ])('malformed %j throws', (fields) => {
    expect(() => parseMapRecord(mapRec(fields))).toThrow();
  });
});
