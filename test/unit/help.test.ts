// Each tool's help is written once, in its script (HELP), right under the script's first two
// lines; the script can be run directly (./scripts/<tool>.ts) from any directory.
import { accessSync, constants, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.ts';

const TOOLS = ['sneakpeek', 'get_all_containers', 'get_container_ns', 'bpftool_map_container_ns'];

describe.each(TOOLS)('%s', (tool) => {
  const file = path.join(ROOT, 'scripts', `${tool}.ts`);
  const src = readFileSync(file, 'utf8');

  it('opens with a shebang that finds the repo from the script\'s own path, then its one-line summary', () => {
    const [shebang, summary] = src.split('\n');
    expect(shebang).toBe(`#!/usr/bin/env -S sh -c 'exec "$(dirname "$(readlink -f "$0")")/../bin/${tool}" "$@"'`);
    expect(summary).toMatch(new RegExp(`^// ${tool} — `));
    accessSync(file, constants.X_OK);
  });

  it('HELP starts with the same summary and has USAGE, OPTIONS, EXAMPLES and EXIT CODES', async () => {
    const { HELP } = (await import(file)) as { HELP: string };
    expect(HELP.split('\n')[0]).toBe(src.split('\n')[1]!.replace(/^\/\/ /, ''));
    for (const section of ['USAGE', 'EXAMPLES', 'EXIT CODES']) expect(HELP).toMatch(new RegExp(`^${section}$`, 'm'));
    expect(HELP).toMatch(/^OPTIONS$/m);
  });

  it('the help text is not written a second time as a comment', () => {
    expect(src).not.toMatch(/^\/\/ (USAGE|EXAMPLES|EXIT CODES)$/m);
  });
});
