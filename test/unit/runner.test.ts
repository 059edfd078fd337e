import { describe, expect, it } from 'vitest';
import { DEFAULTS, type Config } from '../../lib/config.ts';
import { checkNodeAddress, failureOf, nodeCommand, operatorDeadline, pool, runCommand, runNodeScript, zx } from '../../lib/io/runner.ts';

const cfg = (over: Partial<Config['ssh']> = {}, sudo = true): Config => ({ ...structuredClone(DEFAULTS), sudo, ssh: { ...DEFAULTS.ssh, ...over } });
const SSH = ['ssh', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-o', 'ServerAliveInterval=10', '-o', 'ServerAliveCountMax=3'];

const ON_NODE = ['timeout', '-k', '5', '60', 'sh', '-s'];

describe('nodeCommand: every node script runs under the node\'s own `timeout`', () => {
  it.each([
    ['this host, as root', undefined, cfg(), true, ON_NODE],
    ['this host, not root: sudo -n, never a prompt', undefined, cfg(), false, ['sudo', '-n', ...ON_NODE]],
    ['this host, sudo off', 'localhost', cfg({}, false), false, ON_NODE],
    ['a node', '10.0.0.3', cfg(), true, [...SSH, '-l', 'vagrant', '--', '10.0.0.3', 'sudo -n timeout -k 5 60 sh -s']],
    ['a node as root: no sudo', 'node-a.example', cfg({ user: 'root' }), true, [...SSH, '-l', 'root', '--', 'node-a.example', 'timeout -k 5 60 sh -s']],
    ['every ssh setting', '[fd00::3]', cfg({ port: 2222, identityFile: '/k/id', controlMaster: true, options: ['StrictHostKeyChecking=accept-new'] }), true, [
      ...SSH, '-o', 'ControlMaster=auto', '-o', 'ControlPath=~/.ssh/sneakpeek-%C', '-o', 'ControlPersist=60',
      '-o', 'StrictHostKeyChecking=accept-new', '-p', '2222', '-i', '/k/id', '-l', 'vagrant', '--', 'fd00::3', 'sudo -n timeout -k 5 60 sh -s',
    ]],
  ] as const)('%s', (_l, node, c, root, want) => {
    expect(nodeCommand(node, c, root, 60)).toEqual(want);
  });
  it.each([-1, 1.5, NaN])('a deadline of %s is refused', (d) => {
    expect(() => nodeCommand(undefined, cfg(), true, d)).toThrow(/bad deadline/);
  });
  it('deadline 0 is none (a follower): `timeout 0` still makes the run its process group', () => {
    expect(nodeCommand('10.0.0.3', cfg(), true, 0).at(-1)).toBe('sudo -n timeout -k 5 0 sh -s');
    expect(operatorDeadline('10.0.0.3', cfg(), 0)).toBe(Infinity);
    expect(operatorDeadline('10.0.0.3', cfg(), 30)).toBe(30 + 5 + 10);
  });
});

describe('failureOf: why a node failed, in one line', () => {
  const c = { where: '10.0.0.3', deadline: 30, elapsedMs: 1000, limitMs: 40_000, cfg: cfg() };
  it.each([
    ['success', { code: 0, stderr: '' }, c, undefined],
    ['the node\'s timeout ended it (exit 124)', { code: 124, stderr: '' }, c, '10.0.0.3: timed out after 30s'],
    ['this side\'s deadline passed', { code: 143, stderr: '' }, { ...c, elapsedMs: 40_000 }, '10.0.0.3: timed out after 30s'],
    ['interrupted', { code: 143, stderr: '' }, { ...c, interrupted: 'SIGINT' as const }, '10.0.0.3: interrupted (SIGINT)'],
    ['what ssh or the script said last', { code: 255, stderr: 'ssh: connect to host 10.0.0.3 port 22: Connection refused\n' }, c, '10.0.0.3: ssh: connect to host 10.0.0.3 port 22: Connection refused'],
    ['no timeout on the node', { code: 127, stderr: 'sh: 1: timeout: not found\n' }, c, "10.0.0.3: 'timeout' not found on the node (coreutils or busybox is needed)"],
    ['ssh went silent after keepalives', { code: 255, stderr: '' }, { ...c, elapsedMs: 31_000 }, '10.0.0.3: the node stopped answering (ssh: no reply to keepalives for 30s) or the connection dropped'],
    ['ssh failed at once without a word', { code: 255, stderr: '' }, c, '10.0.0.3: ssh failed (exit 255) without saying why'],
    ['a plain exit code', { code: 3, stderr: '' }, c, '10.0.0.3: node script exited 3'],
    ['the ssh client was killed here', { code: 137, stderr: '' }, { ...c, signal: 'SIGKILL' as const }, '10.0.0.3: ssh was killed (SIGKILL)'],
  ] as const)('%s', (_l, run, ctx, want) => {
    expect(failureOf({ ...run, node: '10.0.0.3' }, ctx)).toBe(want);
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
    const r = await runNodeScript({ node: undefined, script: 'printf out; echo err >&2; exit 3' }, root, { deadline: 10 });
    expect(r).toMatchObject({ code: 3, stderr: 'err\n', failure: 'localhost: err' });
    expect(r.stdout.toString()).toBe('out');
  });
  it('a handler that cannot read the output fails this node alone, with one reason', async () => {
    const r = await runNodeScript({ node: undefined, script: 'printf "x\\0"; sleep 5' }, root, {
      deadline: 10,
      onStdout: () => {
        throw new Error('bad record');
      },
    });
    expect(r.failure).toBe('localhost: unreadable output from the node: bad record');
  });
  it('deadline 0: a script runs past any deadline (here 7 s) and is never timed out', async () => {
    const r = await runNodeScript({ node: undefined, script: 'sleep 7; echo done' }, root, { deadline: 0 });
    expect(r).toMatchObject({ code: 0, failure: undefined });
    expect(r.stdout.toString()).toBe('done\n');
  }, 15_000);
  it('a script past its deadline is ended by the node\'s timeout, children and all', async () => {
    const t0 = Date.now();
    const r = await runNodeScript({ node: undefined, script: 'sleep 300 & wait' }, root, { deadline: 1 });
    expect(r.failure).toBe('localhost: timed out after 1s');
    expect(Date.now() - t0).toBeLessThan(4000);
  });
});

describe('zx is the process layer, with POSIX quoting under dash', () => {
  // Each value must reach the program as one argument, byte for byte, through /bin/sh (dash).
  const hostile = ["it's", '$(touch /tmp/sp-zx-canary)', '`id`', 'a b\tc\nd', '"dq"', '\\back', '*', '-n', '', '$HOME', "$'x'", 'é ☃', ';|&<>'];
  it('every value arrives exactly as given', async () => {
    const r = await runCommand(['printf', '%s\\0', ...hostile], { deadline: 10 });
    expect(r.code).toBe(0);
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(hostile);
  });
  it('zx runs /bin/sh, which is dash here: the reason its own bash $\'…\' quoting is replaced', async () => {
    const $ = await zx();
    expect($.shell).toBe('/bin/sh');
    const sh = (await $({ nothrow: true })`readlink -f /bin/sh`).stdout.trim();
    if (!sh.endsWith('dash')) return; // not a Debian/Ubuntu host
    // What zx's default quote would write for a newline: dash prints the $'…' form literally.
    const r = await $({ nothrow: true })`${['sh', '-c', "printf %s $'a\\nb'"]}`;
    expect(r.stdout).toBe("$a\\nb");
  });
  it('a command that exits without reading its input (ssh refused) is a result, not a crash', async () => {
    const r = await runCommand(['sh', '-c', 'exit 3'], { input: 'x'.repeat(4 << 20), deadline: 10 });
    expect(r.code).toBe(3);
  });
  it('a command past its deadline is killed (its whole tree) and says so', async () => {
    const t0 = Date.now();
    const r = await runCommand(['sh', '-c', 'sleep 300 & sleep 300'], { deadline: 1 });
    expect(r.timedOut).toBe(true);
    expect(Date.now() - t0).toBeLessThan(4000);
  });
});
