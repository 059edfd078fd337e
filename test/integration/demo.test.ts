// The README's first command: the demo builds its own layer tree and prints its changes.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ROOT, runTool, TSX } from '../helpers/cli.ts';
import { commandWorks, isRoot, missing } from '../helpers/prereq.ts';

describe.skipIf(missing({ root: isRoot, 'setfattr (attr)': () => commandWorks('setfattr', ['--version']) }))('npm run demo', () => {
  it('prints A, C and D lines for the sample tree, container paths then host paths', () => {
    const r = runTool('demo', []);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [chroot, host] = r.stdout.split('\n\n');
    expect(chroot!.split('\n').slice(1)).toEqual([
      'C /etc', 'C /etc/app', 'C /etc/app/app.conf', 'D /etc/motd', 'A /tmp', 'A /tmp/session',
      'C /var', 'C /var/cache', 'C /var/cache/app', 'D /var/cache/app/a.bin', 'D /var/cache/app/b.bin',
      'A /var/cache/app/fresh.bin', 'A /var/log', 'A /var/log/app', 'A /var/log/app/today.log',
    ]);
    expect(host).toMatch(/^D \/tmp\/sneakpeek-demo-\w+\/container\/merged\/etc\/motd$/m);
  });

  it('works for a user without root or sudo too (user.* xattrs stand in for mknod)', () => {
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', TSX, path.join(ROOT, 'scripts/demo.ts')], {
      cwd: '/', env: { ...process.env, HOME: '/tmp' }, encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^D \/etc\/motd$/m);
    expect(r.stdout).toMatch(/^D \/var\/cache\/app\/a\.bin$/m);
    expect(r.stdout).toMatch(/^A \/var\/log\/app\/today\.log$/m);
  });
});
