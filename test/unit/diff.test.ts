// The diff engine over synthetic layer listings: docker's naive-diff rules, case by case.
import { describe, expect, it } from 'vitest';
import { ChangeComputer, emptyExtras, layerKey, parseEntry, parseListingRecord, parseXattrDump, splitLayerPath, unswapSlash } from '../../lib/diff.ts';
import { entry, listing, type Layers } from '../helpers/layer-spec.ts';

function diff(l: Layers): string[] {
  const all = listing(l);
  const extras = emptyExtras();
  l.extras?.(extras);
  const out: string[] = [];
  const cc = new ChangeComputer(extras, (c) => out.push(`${c.kind} /${c.path}`));
  for (const e of all) cc.push(e);
  cc.end();
  return out;
}

const image = {
  etc: 'd 755', 'etc/motd': 'f 644 8 1000', 'etc/sub': 'd 755', 'etc/sub/a': 'f 644 1 1000',
  data: 'd 755', 'data/old': 'd 755', 'data/old/a': 'f 644 1 1000', 'data/old/b': 'f 644 1 1000',
  'data/old/deep': 'd 755', 'data/old/deep/c': 'f 644 1 1000', bin: 'd 755', 'bin/sh': 'f 755 100 1000',
};

const cases: [string, Layers, string[]][] = [
  ['nothing in the upper dir', { upper: {}, lowers: [image] }, []],
  ['a new file: the file is A, its parent C', { upper: { etc: 'd 755', 'etc/new': 'f 644 3 2000' }, lowers: [image] }, ['C /etc', 'A /etc/new']],
  ['a new tree: every descendant A', { upper: { n: 'd 755', 'n/x': 'd 755', 'n/x/y': 'f 644 1 2000' }, lowers: [image] }, ['A /n', 'A /n/x', 'A /n/x/y']],
  ['a modified file (size)', { upper: { etc: 'd 755', 'etc/motd': 'f 644 9 1000' }, lowers: [image] }, ['C /etc', 'C /etc/motd']],
  ['a modified file (mtime)', { upper: { etc: 'd 755', 'etc/motd': 'f 644 8 1001' }, lowers: [image] }, ['C /etc', 'C /etc/motd']],
  ['chmod only', { upper: { etc: 'd 755', 'etc/motd': 'f 600 8 1000' }, lowers: [image] }, ['C /etc', 'C /etc/motd']],
  ['chown only', { upper: { etc: 'd 755', 'etc/motd': 'f 644 8 1000 1' }, lowers: [image] }, ['C /etc', 'C /etc/motd']],
  ['copied up without a real change: not listed, nor its parents', { upper: { etc: 'd 755', 'etc/sub': 'd 755', 'etc/sub/a': 'f 644 1 1000' }, lowers: [image] }, []],
  ['same second, one side without nanoseconds: same time', { upper: { etc: 'd 755', 'etc/motd': 'f 644 8 1000.5' }, lowers: [image] }, []],
  ['same second, different nanoseconds: changed', {
    upper: { etc: 'd 755', 'etc/motd': 'f 644 8 1000.5' }, lowers: [{ ...image, 'etc/motd': 'f 644 8 1000.7' }],
  }, ['C /etc', 'C /etc/motd']],
  ['a directory mode change alone', { upper: { etc: 'd 700' }, lowers: [image] }, ['C /etc']],
  ['a directory mtime change alone is not a change', { upper: { etc: 'd 755 4096 5000' }, lowers: [image] }, []],
  ['a whiteout: D, parent C', { upper: { etc: 'd 755', 'etc/motd': 'c 0' }, lowers: [image] }, ['C /etc', 'D /etc/motd']],
  ['a whited-out directory: only its top is D', { upper: { data: 'd 755', 'data/old': 'c 0' }, lowers: [image] }, ['C /data', 'D /data/old']],
  ['a whiteout of something the image never had', { upper: { etc: 'd 755', 'etc/ghost': 'c 0' }, lowers: [image] }, []],
  ['an xattr whiteout (zero-size file)', {
    upper: { etc: 'd 755', 'etc/motd': 'f 0 0 1000' }, lowers: [image],
    extras: (x) => x.xwhiteout.add(layerKey(0, 'etc/motd')),
  }, ['C /etc', 'D /etc/motd']],
  ['an opaque directory re-created with new content', {
    upper: { data: 'd 755', 'data/old': 'd 755', 'data/old/new': 'f 644 1 2000', 'data/old/a': 'f 644 1 1000' }, lowers: [image],
    extras: (x) => x.opaque.add(layerKey(0, 'data/old')),
  }, ['C /data', 'C /data/old', 'D /data/old/b', 'D /data/old/deep', 'A /data/old/new']],
  ['an opaque directory hides re-created subdirectories\' image children', {
    upper: { data: 'd 755', 'data/old': 'd 755', 'data/old/deep': 'd 755' }, lowers: [image],
    extras: (x) => x.opaque.add(layerKey(0, 'data/old')),
  }, ['C /data', 'C /data/old', 'D /data/old/a', 'D /data/old/b', 'C /data/old/deep', 'D /data/old/deep/c']],
  ['a file replaced by a directory: C, and its contents A', { upper: { etc: 'd 755', 'etc/motd': 'd 755', 'etc/motd/x': 'f 644' }, lowers: [image] }, ['C /etc', 'C /etc/motd', 'A /etc/motd/x']],
  ['a directory replaced by a file: C only', { upper: { etc: 'd 755', 'etc/sub': 'f 644 1' }, lowers: [image] }, ['C /etc', 'C /etc/sub']],
  ['a new symlink', { upper: { etc: 'd 755', 'etc/link': 'l 777 4' }, lowers: [image] }, ['C /etc', 'A /etc/link']],
  ['a changed security.capability', {
    upper: { bin: 'd 755', 'bin/sh': 'f 755 100 1000' }, lowers: [image],
    extras: (x) => x.capability.set(layerKey(0, 'bin/sh'), '0x01'),
  }, ['C /bin', 'C /bin/sh']],
  ['a device with other numbers', {
    upper: { dev: 'd 755', 'dev/null': 'c 666' }, lowers: [{ dev: 'd 755', 'dev/null': 'c 666' }],
    extras: (x) => { x.rdev.set(layerKey(0, 'dev/null'), '1:3'); x.rdev.set(layerKey(1, 'dev/null'), '1:5'); },
  }, ['C /dev', 'C /dev/null']],
  ['the root is never listed', { upper: { '': 'd 700', etc: 'd 755', 'etc/new': 'f 644' }, lowers: [image] }, ['C /etc', 'A /etc/new']],
  ['two image layers: the top lower wins', {
    upper: { etc: 'd 755', 'etc/motd': 'f 644 9 1000' }, lowers: [{ etc: 'd 755', 'etc/motd': 'f 644 9 1000' }, image],
  }, []],
  ['two image layers: a file deleted in the image comes back as A', {
    upper: { etc: 'd 755', 'etc/motd': 'f 644 8 1000' }, lowers: [{ etc: 'd 755', 'etc/motd': 'c 0' }, image],
  }, ['C /etc', 'A /etc/motd']],
  ['two image layers: an opaque lower dir hides the layer below', {
    upper: { data: 'd 755', 'data/old': 'd 755', 'data/old/a': 'f 644 1 1000' },
    lowers: [{ data: 'd 755', 'data/old': 'd 755', 'data/old/z': 'f 644 1 1000' }, image],
    extras: (x) => x.opaque.add(layerKey(1, 'data/old')),
  }, ['C /data', 'C /data/old', 'A /data/old/a']],
  ['names that sort between a directory and its contents', {
    upper: { etc: 'd 755', 'etc-x': 'f 644', 'etc.d': 'd 755', 'etc/new': 'f 644' }, lowers: [image],
  }, ['C /etc', 'A /etc/new', 'A /etc-x', 'A /etc.d']],
];

describe('ChangeComputer', () => {
  it.each(cases)('%s', (_name, layers, expected) => {
    expect(diff(layers)).toEqual(expected);
  });
});

describe('parseEntry', () => {
  it.each([
    [['f', '644', '0', '0', '12', '1700000000.1234567890', '000\x01etc\x01motd'], { layer: 0, type: 'f', mode: 0o644, size: 12, mtimeSec: 1700000000, mtimeNsec: 123456789, path: 'etc/motd' }],
    [['d', '1777', '5', '6', '4096', '1700000000', '002\x01'], { layer: 2, type: 'd', mode: 0o1777, uid: 5, gid: 6, mtimeNsec: 0, path: '' }],
    [['f', '644', '0', '0', '1', '1.5', '001\x01a/b\x01c'], { layer: 1, mtimeNsec: 500000000, path: 'a\x01b/c' }],
    [['l', '777', '0', '0', '4', '1', '123\x01x'], { layer: 123, type: 'l', path: 'x' }],
  ])('%j', (fields, want) => {
    expect(parseEntry(fields)).toMatchObject(want);
  });
  it.each([
    ['an unknown type', ['q', '644', '0', '0', '1', '1', '000\x01x']],
    ['too few fields', ['f', '644']],
    ['a path without its layer', ['f', '644', '0', '0', '1', '1', 'etc\x01motd']],
    ['a layer that is not three digits', ['f', '644', '0', '0', '1', '1', '01\x01x']],
  ])('refuses %s', (_label, fields) => {
    expect(() => parseEntry(fields)).toThrow(/bad layer listing record/);
  });
  it('parseListingRecord reads a whole record', () => {
    expect(parseListingRecord('F\t7\tf\t600\t1\t2\t3\t4.5\t001\x01a\tb')).toEqual([7, {
      layer: 1, type: 'f', mode: 0o600, uid: 1, gid: 2, size: 3, mtimeSec: 4, mtimeNsec: 500000000, path: 'a\tb',
    }]);
  });
});

describe('splitLayerPath', () => {
  it.each([
    ['000/etc/motd', [0, 'etc/motd']],
    ['001/', [1, '']],
    ['017//etc/app', [17, 'etc/app']], // getfattr -R under NNN/
    ['999/a\nb', [999, 'a\nb']],
    ['etc/motd', undefined],
    ['01/x', undefined],
    ['0a1/x', undefined],
    ['001', undefined],
  ])('%j → %j', (p, want) => {
    expect(splitLayerPath(p)).toEqual(want);
  });
});

describe('unswapSlash', () => {
  it.each([['a\x01b', 'a/b'], ['a/b', 'a\x01b'], ['plain', 'plain'], ['\x01/\x01', '/\x01/']])('%j → %j', (i, o) => {
    expect(unswapSlash(i)).toBe(o);
  });
});

describe('parseXattrDump', () => {
  it('reads opaque, whiteout and capability xattrs with octal-escaped names', () => {
    const x = emptyExtras();
    parseXattrDump([
      '# file: 000/', 'trusted.overlay.opaque=0x79', '',
      '# file: 000//a\\012b', 'user.overlay.opaque=0x79', '',
      '# file: 000//back\\134slash', 'trusted.overlay.opaque=0x78', '',
      '# file: 002/w', 'trusted.overlay.whiteout=0x', '',
      '# file: 001/bin/ping', 'security.capability=0x0100000200200000', '',
      '# file: not-a-layer-path', 'trusted.overlay.opaque=0x79', '',
    ].join('\n'), x);
    expect([...x.opaque]).toEqual([layerKey(0, ''), layerKey(0, 'a\nb')]);
    expect([...x.xwhiteout]).toEqual([layerKey(2, 'w')]);
    expect(x.capability.get(layerKey(1, 'bin/ping'))).toBe('0x0100000200200000');
  });
});

describe('memory', () => {
  it('stays flat as the number of changes grows (changes stream out, nothing accumulates)', async () => {
    const v8 = await import('node:v8');
    const vm = await import('node:vm');
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const run = (n: number) => {
      let emitted = 0;
      const cc = new ChangeComputer(emptyExtras(), () => void emitted++);
      cc.push(entry(0, '', 'd 755'));
      cc.push(entry(0, 'new', 'd 755'));
      for (let i = 0; i < n; i++) {
        if (i % 100 === 0) cc.push(entry(0, `new/${String(i / 100).padStart(6, '0')}`, 'd 755'));
        cc.push(entry(0, `new/${String(Math.floor(i / 100)).padStart(6, '0')}/${i}`, 'f 644 1 2000'));
      }
      gc();
      const during = process.memoryUsage().heapUsed; // the computer is still live here
      cc.end();
      return { emitted, during };
    };
    gc();
    const base = process.memoryUsage().heapUsed;
    const small = run(10_000);
    const big = run(300_000);
    expect(big.emitted).toBe(300_000 + 3_000 + 1);
    // 300k accumulated changes would hold tens of MB; streaming holds a directory stack.
    expect(big.during - base).toBeLessThan(8 << 20);
    expect(big.during - small.during).toBeLessThan(4 << 20);
  });
});
