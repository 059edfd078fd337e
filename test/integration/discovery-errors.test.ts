// get_all_containers when kubectl itself is the problem: exit 1 (the operation failed), one
// line; a bad saved file is the user's input: exit 2.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runTool } from '../helpers/cli.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-discovery-'));
const config = (kubectl: string) => {
  const f = path.join(dir, `${path.basename(kubectl)}.yaml`);
  writeFileSync(f, `paths:\n  kubectl: ${kubectl}\n`);
  return f;
};
const fake = (name: string, body: string) => {
  const f = path.join(dir, name);
  writeFileSync(f, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return f;
};

describe('get_all_containers: kubectl failures', () => {
  it.each([
    ['kubectl missing', () => config(path.join(dir, 'no-kubectl')), 1, /no-kubectl: not found \(set paths\.kubectl/],
    ['kubectl answers with a web page', () => config(fake('html-kubectl', "echo '<html>proxy login</html>'")), 1, /kubectl get pods: not JSON/],
    ['kubectl fails', () => config(fake('failing-kubectl', "echo 'error: You must be logged in to the server (Unauthorized)' >&2; exit 1")), 1, /kubectl get pods failed: error: You must be logged in/],
  ])('%s → exit %i, one line', (_l, cfg, code, msg) => {
    const r = runTool('get_all_containers', [], { env: { SNEAKPEEK_CONFIG: cfg() } });
    expect(r.stdout).toBe('');
    expect(r.code).toBe(code);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(msg);
  });

  it('a saved pods file that is not JSON is the user\'s input: exit 2', () => {
    const f = path.join(dir, 'pods.json');
    writeFileSync(f, '<html>');
    const r = runTool('get_all_containers', ['--pods-file', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/pods\.json: not JSON/);
  });
});
