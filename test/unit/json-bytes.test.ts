import { describe, expect, it } from 'vitest';
import type { Entry } from '../../lib/diff.ts';
import { formatChange } from '../../lib/diff-stream.ts';
import { bytesField, textOf } from '../../lib/json-bytes.ts';

const entry = (p: string): Entry => ({ layer: 0, type: 'f', mode: 0o644, uid: 0, gid: 0, size: 0, mtimeSec: 0, mtimeNsec: 0, path: p });
const L = (bytes: number[] | string) => (typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : Buffer.from(bytes)).toString('latin1');

describe('textOf: each byte of an invalid sequence is one U+FFFD, as docker (Go) shows it', () => {
  // The expected strings are what docker 20.10's /containers/ID/changes answered for these names.
  it.each([
    ['valid UTF-8', L('été ☃'), 'été ☃'],
    ['two invalid bytes', L([0x62, 0x61, 0x64, 0xff, 0xfe, 0x6e]), 'bad\ufffd\ufffdn'],
    ['a truncated sequence (2 of ☃\'s 3 bytes)', L([0x74, 0xe2, 0x98, 0x78]), 't\ufffd\ufffdx'],
    ['an overlong /', L([0x6f, 0xc0, 0xaf, 0x78]), 'o\ufffd\ufffdx'],
    ['a surrogate', L([0x73, 0xed, 0xa0, 0x80, 0x78]), 's\ufffd\ufffd\ufffdx'],
    ['above U+10FFFF', L([0x62, 0xf4, 0x90, 0x80, 0x80, 0x78]), 'b\ufffd\ufffd\ufffd\ufffdx'],
    ['valid 4-byte after an invalid byte', L([0xff, 0xf0, 0x9f, 0x98, 0x80]), '\ufffd😀'],
    ['a lone continuation byte at the end', L([0x61, 0x80]), 'a\ufffd'],
  ])('%s', (_l, latin1, want) => {
    expect(textOf(Buffer.from(latin1, 'latin1'))).toBe(want);
  });
});

describe('bytesField', () => {
  it.each([
    ['ASCII', '/etc/motd', { path: '/etc/motd' }],
    ['valid UTF-8 appears as itself', L('/tmp/été ☃'), { path: '/tmp/été ☃' }],
    ['a name that holds U+FFFD itself is valid: no bytes field', L('/tmp/ok\ufffd'), { path: '/tmp/ok\ufffd' }],
    ['control characters are text (JSON escapes them)', '/tmp/a\tb\nc', { path: '/tmp/a\tb\nc' }],
    ['invalid UTF-8: text with U+FFFD and the bytes in base64', L([0x2f, 0x62, 0xff, 0xfe]), { path: '/b\ufffd\ufffd', pathBytes: Buffer.from([0x2f, 0x62, 0xff, 0xfe]).toString('base64') }],
  ])('%s', (_l, latin1, want) => {
    expect(bytesField('path', latin1)).toEqual(want);
  });
});

describe('formatChange --json: valid UTF-8 JSON for any name', () => {
  const names = [L('/tmp/été ☃'), '/tmp/tab\there', '/tmp/new\nline', L([0x2f, 0x74, 0x6d, 0x70, 0x2f, 0x62, 0xff, 0xfe])];
  const facts = { id: 'x', name: 'c', pid: 1, driver: 'overlay2', upperDir: '/u', lowerDirs: [], mergedDir: '/var/lib/docker/overlay2/é/merged' };
  it.each(names)('%j', (latin1) => {
    const line = formatChange({ kind: 'A', path: latin1.slice(1), entry: entry(latin1.slice(1)) }, { key: 0, name: 'c', facts }, { chroot: true, json: true, nul: false, all: false });
    // The sink writes the line as latin1: these are the bytes on stdout.
    const bytes = Buffer.from(line, 'latin1');
    const text = bytes.toString('utf8');
    expect(Buffer.from(text, 'utf8').equals(bytes)).toBe(true); // valid UTF-8
    expect(text.endsWith('\n')).toBe(true);
    expect(text.slice(0, -1)).not.toContain('\n');
    const obj = JSON.parse(text) as { path: string; pathBytes?: string; hostPath: string; hostPathBytes?: string };
    const pathBytes = obj.pathBytes ? Buffer.from(obj.pathBytes, 'base64') : Buffer.from(obj.path, 'utf8');
    expect(pathBytes.equals(Buffer.from(latin1, 'latin1'))).toBe(true);
    const hostBytes = obj.hostPathBytes ? Buffer.from(obj.hostPathBytes, 'base64') : Buffer.from(obj.hostPath, 'utf8');
    expect(hostBytes.equals(Buffer.concat([Buffer.from('/var/lib/docker/overlay2/é/merged', 'utf8'), Buffer.from(latin1, 'latin1')]))).toBe(true);
  });

  it('text output keeps the raw bytes', () => {
    const latin1 = L([0x2f, 0x62, 0xff, 0xfe]);
    const line = formatChange({ kind: 'A', path: latin1.slice(1), entry: entry(latin1.slice(1)) }, { key: 0, name: 'c' }, { chroot: true, json: false, nul: true, all: false });
    expect(Buffer.from(line, 'latin1')).toEqual(Buffer.from([0x41, 0x20, 0x2f, 0x62, 0xff, 0xfe, 0]));
  });
});
