// Every script's header comment (USAGE, EXAMPLES, EXIT CODES) says what its --help says.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.ts';

const TOOLS = ['sneakpeek', 'get_all_containers', 'get_container_ns', 'bpftool_map_container_ns'];
const squash = (s: string) => s.replace(/\s+/g, ' ').trim();

describe.each(TOOLS)('%s: header and --help agree', (tool) => {
  it('every USAGE, EXAMPLES and EXIT CODES line of the header is in HELP', async () => {
    const src = readFileSync(path.join(ROOT, 'scripts', `${tool}.ts`), 'utf8');
    const header = src.split('\n').filter((l) => l.startsWith('//')).map((l) => l.replace(/^\/\/ ?/, ''));
    expect(header[0]).toMatch(new RegExp(`^${tool} — `));
    const start = header.indexOf('USAGE');
    expect(start).toBeGreaterThan(0);
    const body = header.slice(start).filter((l) => l.trim() && !/^(USAGE|EXAMPLES|EXIT CODES)$/.test(l.trim()));
    const { HELP } = (await import(path.join(ROOT, 'scripts', `${tool}.ts`))) as { HELP: string };
    for (const line of body) expect(squash(HELP)).toContain(squash(line));
  });
});
