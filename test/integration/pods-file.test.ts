// What a saved pod list (--pods-file) can carry that it should not: get_all_containers and
// sneakpeek as child processes, on files written here.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runTool } from '../helpers/cli.ts';
import { pod } from '../helpers/kube.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-reliability-input-pods-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ID = (c: string) => c.repeat(64);
const podsFile = (name: string, items: unknown[]) => {
  const f = path.join(dir, name);
  writeFileSync(f, JSON.stringify({ kind: 'List', apiVersion: 'v1', items }));
  return f;
};

describe('hostIP must be an IP address', () => {
  it('1, 999.999.999.999, ::: and a host name are one problem line each; the good pod is listed; exit 1', () => {
    const f = podsFile('hostips.json', [
      pod({ name: 'one', hostIP: '1', containers: [{ name: 'a', id: ID('1') }] }),
      pod({ name: 'range', hostIP: '999.999.999.999', containers: [{ name: 'a', id: ID('2') }] }),
      pod({ name: 'colons', hostIP: ':::', containers: [{ name: 'a', id: ID('3') }] }),
      pod({ name: 'named', hostIP: 'node-a.example', containers: [{ name: 'a', id: ID('4') }] }),
      pod({ name: 'good', hostIP: '10.0.0.3', containers: [{ name: 'a', id: ID('5') }] }),
      pod({ name: 'good6', hostIP: 'fd00::3', containers: [{ name: 'a', id: ID('6') }] }),
    ]);
    const r = runTool('get_all_containers', ['--pods-file', f]);
    expect(r.stdout).toBe('10.0.0.3,555555555555\nfd00::3,666666666666\n');
    expect(r.stderr.split('\n').filter(Boolean).sort()).toEqual([
      'get_all_containers: pod default/colons: invalid hostIP ":::": not an IP address',
      'get_all_containers: pod default/named: invalid hostIP "node-a.example": not an IP address',
      'get_all_containers: pod default/one: invalid hostIP "1": not an IP address',
      'get_all_containers: pod default/range: invalid hostIP "999.999.999.999": not an IP address',
    ]);
    expect(r.code).toBe(1);
  });

  it('sneakpeek never hands such a hostIP to ssh (--dry-run shows only the good node)', () => {
    const f = podsFile('hostips-sneakpeek.json', [
      pod({ name: 'one', hostIP: '1', containers: [{ name: 'a', id: ID('1') }] }),
      pod({ name: 'good', hostIP: '10.0.0.3', containers: [{ name: 'a', id: ID('5') }] }),
    ]);
    const r = runTool('sneakpeek', ['-t', 'files', '--pods-file', f, '--dry-run']);
    expect(r.stdout.match(/^# node: .*$/gm)).toEqual(['# node: 10.0.0.3']);
    expect(r.stderr).toContain('sneakpeek: pod default/one: invalid hostIP "1": not an IP address');
  });
});
