import { describe, expect, it } from 'vitest';
import { RecordSplitter, splitFields, utf8 } from '../../lib/wire.ts';

describe('RecordSplitter', () => {
  it.each([
    [['a\0b\0'], ['a', 'b']],
    [['a', 'b\0c', '\0'], ['ab', 'c']],
    [['\0\0'], ['', '']],
    [['x\0', 'partial'], ['x']],
  ])('%j → %j', (chunks, want) => {
    const s = new RecordSplitter();
    const got: string[] = [];
    for (const c of chunks) s.push(Buffer.from(c, 'latin1'), (r) => got.push(r));
    expect(got).toEqual(want);
  });

  it('keeps every byte of a record split across chunks (latin1), and utf8() reads text back', () => {
    const bytes = Buffer.from('F\t0\tünï\ncode\0', 'utf8');
    const s = new RecordSplitter();
    const got: string[] = [];
    for (let i = 0; i < bytes.length; i++) s.push(bytes.subarray(i, i + 1), (r) => got.push(r));
    expect(got).toHaveLength(1);
    expect(Buffer.from(got[0]!, 'latin1')).toEqual(bytes.subarray(0, -1));
    expect(utf8(got[0]!)).toBe('F\t0\tünï\ncode');
  });

  it('reports bytes left without a terminator', () => {
    const s = new RecordSplitter();
    s.push(Buffer.from('abc'), () => {});
    expect(s.leftover).toBe(3);
  });
});

describe('splitFields', () => {
  it.each([
    ['a\tb\tc', Infinity, ['a', 'b', 'c']],
    ['a\tb\tc\td', 3, ['a', 'b', 'c\td']],
    ['only', 4, ['only']],
    ['a\t\tb', Infinity, ['a', '', 'b']],
  ])('%j (max %s)', (rec, max, want) => {
    expect(splitFields(rec, max)).toEqual(want);
  });
});
