// The --help check every tool makes before it loads yargs, and what still reaches yargs.
import { describe, expect, it } from 'vitest';
import { wantsHelp } from '../../lib/cli.ts';
import { main as sneakpeek } from '../../scripts/sneakpeek.ts';
import { Writable, Readable } from 'node:stream';

describe('wantsHelp', () => {
  it.each([
    [['--help'], true],
    [['-h'], true],
    [['-t', 'files', '-h'], true],
    [['--bogus', '--help'], true],
    [['--', '-h'], false], // after --, an argument like any other
    [['-vh'], false], // combined short flags: yargs decides
    [['--help=false'], false],
    [['-n', 'help'], false],
    [[], false],
  ])('%j → %s', (argv, want) => {
    expect(wantsHelp(argv)).toBe(want);
  });
});

describe('a tool', () => {
  const run = async (argv: string[]) => {
    let out = '';
    let err = '';
    const sink = (f: (s: string) => void) => new Writable({ write(c, _e, cb) { f(String(c)); cb(); } });
    const code = await sneakpeek(argv, { stdout: sink((s) => (out += s)), stderr: sink((s) => (err += s)), stdin: Readable.from([]), env: {} });
    return { code, out, err };
  };
  it('prints its help for -h before parsing anything else (an unknown option does not matter)', async () => {
    const r = await run(['--no-such-option', '-h']);
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toMatch(/^sneakpeek — /);
  });
  it('still prints it for -vh, through yargs', async () => {
    const r = await run(['-vh']);
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toMatch(/^sneakpeek — /);
  });
  it('without -h an unknown option is a usage error', async () => {
    const r = await run(['--no-such-option']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/Unknown argument/);
  });
});
