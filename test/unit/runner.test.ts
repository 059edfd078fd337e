import { describe, expect, it } from 'vitest';
import { DEFAULTS, type Config } from '../../lib/config.ts';
import { checkNodeAddress, nodeCommand, pool, runNodeScript } from '../../lib/io/runner.ts';

const cfg = (over: Partial<Config['ssh']> = {}, sudo = true): Config => ({ ...structuredClone(DEFAULTS), sudo, ssh: { ...DEFAULTS.ssh, ...over } });
const SSH = ['ssh', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-o', 'ServerAliveInterval=10', '-o', 'ServerAliveCountMax=3'];

describe('nodeCommand', () => {
  it.each([
    ['this host, as root', undefined, cfg(), true, ['sh', '-s']],
    ['this host, not root: sudo -n, never a prompt', undefined, cfg(), false, ['sudo', '-n', 'sh', '-s']],
    ['this host, sudo off', 'localhost', cfg({}, false), false, ['sh', '-s']],
    ['a node', '10.0.0.3', cfg(), true, [...SSH, '-l', 'vagrant', '--', '10.0.0.3', 'sudo -n sh -s']],
    ['a node as root: no sudo', 'node-a.example', cfg({ user: 'root' }), true, [...SSH, '-l', 'root', '--', 'node-a.example', 'sh -s']],
    ['every ssh setting', '[fd00::3]', cfg({ port: 2222, identityFile: '/k/id', controlMaster: true, options: ['StrictHostKeyChecking=accept-new'] }), true, [
      ...SSH, '-o', 'ControlMaster=auto', '-o', 'ControlPath=~/.ssh/sneakpeek-%C', '-o', 'ControlPersist=60',
      '-o', 'StrictHostKeyChecking=accept-new', '-p', '2222', '-i', '/k/id', '-l', 'vagrant', '--', 'fd00::3', 'sudo -n sh -s',
    ]],
  ] as const)('%s', (_l, node, c, root, want) => {
    expect(nodeCommand(node, c, root)).toEqual(want);
  });
});

describe('checkNodeAddress', () => {
  it.each(['10.0.0.3', 'node-a', 'node-a.cluster.local', 'fd00::3', '[fd00::3]', 'fe80::1%eth0', '::1', 'node1', '1node.example', 'k8s-1.example'])('accepts %s', (a) => {
    expect(() => checkNodeAddress(a)).not.toThrow();
  });
  // -a may be a host name; but what libc would read as an address (inet_aton: '1', '127.1',
  // '0x7f.1', octal '010.0.0.1') or no host name can be (an all-numeric last label) must be an IP.
  it.each(['', '-oProxyCommand=x', 'a b', 'a;b', '$(id)', '`id`', 'a\nb', 'node_a', "it's", 'user@host',
    '1', '999.999.999.999', ':::', '127.1', '0x7f.1', '010.0.0.1', 'node.1', '[node-a]', 'fd00::3::1'])('refuses %j', (a) => {
    expect(() => checkNodeAddress(a)).toThrow(/invalid node address/);
  });
});

describe('pool', () => {
  it('keeps input order and never runs more than the limit at once', async () => {
    let running = 0;
    let most = 0;
    const out = await pool([5, 1, 4, 2, 3], 2, async (n) => {
      most = Math.max(most, ++running);
      await new Promise((r) => setTimeout(r, n * 5));
      running--;
      return n * 10;
    });
    expect(out).toEqual([50, 10, 40, 20, 30]);
    expect(most).toBe(2);
  });
});

describe('runNodeScript (this host)', () => {
  const root = cfg({}, false);
  it('gives the script its stdin and returns code, stdout, stderr', async () => {
    const r = await runNodeScript({ node: undefined, script: 'printf out; echo err >&2; exit 3' }, root);
    expect(r).toMatchObject({ code: 3, stderr: 'err\n' });
    expect(r.stdout.toString()).toBe('out');
  });
  it('a handler that cannot read the output fails this node alone, with one reason', async () => {
    const r = await runNodeScript({ node: undefined, script: 'printf "x\\0"; sleep 5' }, root, {
      onStdout: () => {
        throw new Error('bad record');
      },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unreadable output from the node: bad record/);
  });
});
