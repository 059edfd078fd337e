// bin/<tool>: what cron and systemd run. It must work from any directory with a bare
// environment, and through a link of the user's own.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.ts';

const TOOLS = ['sneakpeek', 'get_all_containers', 'get_container_ns', 'bpftool_map_container_ns'];
const bare = { PATH: `${path.dirname(process.execPath)}:/usr/sbin:/usr/bin:/sbin:/bin` };

describe('bin/ launchers', () => {
  it.each(TOOLS)('bin/%s --help works from / with a cron-like environment', (tool) => {
    const r = spawnSync(path.join(ROOT, 'bin', tool), ['--help'], { cwd: '/', env: bare, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(new RegExp(`^${tool} — `));
  });

  it('a link of the user\'s own to bin/sneakpeek runs sneakpeek; bin/run alone refuses', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-launch-'));
    symlinkSync(path.join(ROOT, 'bin/sneakpeek'), path.join(dir, 'spy'));
    const r = spawnSync(path.join(dir, 'spy'), ['-t', 'nosuch'], { cwd: dir, env: bare, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^sneakpeek: Invalid values/);
    const run = spawnSync(path.join(ROOT, 'bin/run'), [], { env: bare, encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/no tool named 'run'/);
  });

  it.each(TOOLS)('./scripts/%s.ts runs directly from any directory and through a link of its own', (tool) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-direct-'));
    symlinkSync(path.join(ROOT, 'scripts', `${tool}.ts`), path.join(dir, tool));
    for (const cmd of [path.join(ROOT, 'scripts', `${tool}.ts`), path.join(dir, tool)]) {
      const r = spawnSync(cmd, ['--help'], { cwd: '/', env: bare, encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout.split('\n')[0]).toMatch(new RegExp(`^${tool} — `));
    }
  });
});
