import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { readAll, readInputFile } from '../../lib/io/entry.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-reliability-input-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readAll: stdin, bounded while it is read', () => {
  it.each([
    ['under the limit', ['ab', 'cd'], 5, 'abcd'],
    ['exactly the limit', ['ab', 'cde'], 5, 'abcde'],
    ['one byte over', ['ab', 'cdef'], 5, null],
  ])('%s', async (_l, chunks, limit, want) => {
    const read = readAll(Readable.from(chunks.map((c) => Buffer.from(c))), limit, 'stdin');
    if (want === null) await expect(read).rejects.toThrow('stdin: larger than');
    else expect((await read).toString()).toBe(want);
  });

  it('stops reading at the limit: an endless stream ends', async () => {
    let pulled = 0;
    const endless = new Readable({ read() { pulled++; this.push(Buffer.alloc(1024)); } });
    await expect(readAll(endless, 64 * 1024, 'stdin')).rejects.toThrow(/larger than/);
    expect(pulled).toBeLessThan(100);
    expect(endless.destroyed).toBe(true);
  });
});

describe('readInputFile: a regular file of at most `limit` bytes', () => {
  it.each([
    ['empty', 0, 4, 0],
    ['at the limit', 4, 4, 4],
    ['over the limit', 5, 4, null],
    ['large, under the limit', 300_000, 1 << 20, 300_000],
  ])('%s', (label, size, limit, want) => {
    const f = path.join(dir, `${label}.bin`);
    writeFileSync(f, Buffer.alloc(size, 0x61));
    if (want === null) expect(() => readInputFile(f, limit, `-f ${f}`)).toThrow(`-f ${f}: larger than`);
    else expect(readInputFile(f, limit, 'x').length).toBe(want);
  });
});
