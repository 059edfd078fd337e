import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { shJoin, shQuote } from '../../lib/quote.ts';

const hostile = [
  'plain', '', 'with space', "it's", '"dq"', '$(touch /tmp/x)', '`id`', 'a;b', 'a&&b', 'a|b', '\n', 'new\nline',
  '\t', '-rf', '--', '*', '?', '~', '$HOME', '\\', "'", "''", "'\\''", 'ünï', '#comment', '!', '{a,b}', '>out', '<in',
];

describe('shQuote', () => {
  it.each(hostile)('%j survives sh as exactly one argument', (value) => {
    const out = execFileSync('sh', ['-c', `printf '%s\\0' ${shQuote(value)}`]);
    expect(out.toString('utf8')).toBe(`${value}\0`);
  });

  it('joins arguments, each quoted', () => {
    const out = execFileSync('sh', ['-c', `printf '%s\\0' ${shJoin(hostile)}`]);
    expect(out.toString('utf8').split('\0').slice(0, -1)).toEqual(hostile);
  });

  it('refuses a NUL byte, which no shell argument can hold', () => {
    expect(() => shQuote('a\0b')).toThrow(/NUL/);
  });

  it.each([['abc', 'abc'], ['/usr/bin/x', '/usr/bin/x'], ['a b', "'a b'"], ['-n', "'-n'"], ["it's", "'it'\\''s'"]])('%j → %s', (i, o) => {
    expect(shQuote(i)).toBe(o);
  });
});
