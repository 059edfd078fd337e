// The README's first command: the demo builds its own layer tree and prints its changes.
import { describe, expect, it } from 'vitest';
import { runTool } from '../helpers/cli.ts';
import { isRoot, missing } from '../helpers/prereq.ts';

describe.skipIf(missing({ root: isRoot }))('npm run demo', () => {
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
});
