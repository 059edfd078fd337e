// -t fswatch with real parts: a private systemd (PID 1 of its own namespaces, unit path = a
// temp dir only; test/helpers/systemd.ts) runs fswatch@<ID>.service for real docker
// containers (--network none). The node script runs as sneakpeek runs it on this host; its
// `systemctl` reaches the private instance through the helper's shim, its unit/env/log dirs
// are the instance's temp dirs (config below).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config.ts';
import { fswatchSpec, parseFswatchLine, upperDirOfHeader } from '../../lib/fswatch-unit.ts';
import { renderTemplate } from '../../lib/units.ts';
import { ROOT, runTool, type Run } from '../helpers/cli.ts';
import { cleanupContainers, docker, dockerTry, ensureBusyboxImage, exec, runContainer } from '../helpers/docker.ts';
import { pod } from '../helpers/kube.ts';
import { dockerUp, isRoot, missing } from '../helpers/prereq.ts';
import { startPrivateSystemd, systemdAvailable, verifyInstance, type PrivateSystemd } from '../helpers/systemd.ts';

const skip = missing({
  root: isRoot,
  docker: dockerUp,
  'systemd, systemd-analyze, nsenter, unshare': systemdAvailable,
  'fswatch (apt-get install fswatch)': () => existsSync('/usr/bin/fswatch'),
});

const A = `sp-fswatch-a-${process.pid}`;
const B = `sp-fswatch-b-${process.pid}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'sp-fswatch-'));
const canary = path.join(tmp, 'canary');
let sd: PrivateSystemd;
let cfgFile: string;
let cfgText: string;
let idA: string;
let idB: string;

const run = (args: string[]): Run => runTool('sneakpeek', ['-t', 'fswatch', ...args], { env: { ...(sd.env as Record<string, string>), SNEAKPEEK_CONFIG: cfgFile } });
const envDir = () => path.join(sd.dir, 'env', 'fswatch');
const logDir = () => path.join(sd.dir, 'log');
const logOf = (id: string) => path.join(logDir(), `fswatch-${id}.log`);
const templateFile = () => path.join(sd.unitDir, 'fswatch@.service');
const logLines = (id: string) => (existsSync(logOf(id)) ? readFileSync(logOf(id), 'utf8').split('\n').filter(Boolean) : []);
const show = (unit: string, prop: string) => sd.systemctl('show', '-p', prop, '--value', unit).stdout.trim();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait until the log of `id` has more than `from` lines matching every pattern; return the new lines. */
async function newLines(id: string, from: number, want: RegExp[], ms = 8000): Promise<string[]> {
  const end = Date.now() + ms;
  for (;;) {
    const fresh = logLines(id).slice(from);
    if (want.every((re) => fresh.some((l) => re.test(l))) || Date.now() > end) return fresh;
    await sleep(200);
  }
}

function writeConfig(extra = ''): void {
  cfgText = `ssh: {user: root}
sudo: false
unitDir: ${sd.unitDir}
envDir: ${path.join(sd.dir, 'env')}
log: {target: file, dir: ${logDir()}}
${extra}`;
  writeFileSync(cfgFile, cfgText);
}

beforeAll(async () => {
  if (skip) return;
  ensureBusyboxImage();
  sd = await startPrivateSystemd('fswatch');
  cfgFile = path.join(tmp, 'sneakpeek.config.yaml');
  writeConfig();
  idA = runContainer(A, 'sneakpeek-test/busybox:1').slice(0, 12);
  idB = runContainer(B, 'sneakpeek-test/busybox:1').slice(0, 12);
});

afterAll(async () => {
  cleanupContainers();
  await sd?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(skip)('fswatch@.service verified by systemd-analyze', () => {
  const spec = (yaml: string) => renderTemplate(parseConfig(yaml), fswatchSpec(parseConfig(yaml)));

  it.each([
    ['the shipped template (journal)', () => readFileSync(path.join(ROOT, 'systemd/fswatch@.service'), 'utf8')],
    ['rendered with log.target: file', () => spec('log: {target: file, dir: /var/log/sneakpeek}')],
    ['rendered with hostile flags', () => spec('fswatch: {flags: ["-r", "$(touch /tmp/canary)", ";", "%n", "a b"]}')],
  ])('%s: fswatch@example.service verifies clean', (_what, text) => {
    const r = verifyInstance('fswatch@.service', text(), 'example');
    expect(r.output).toBe('');
    expect(r.status).toBe(0);
  });

  it('and it can fail: a missing fswatch binary is reported', () => {
    const r = verifyInstance('fswatch@.service', spec('paths: {fswatch: /usr/bin/no-such-fswatch}'), 'example');
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/no-such-fswatch/);
  });
});

describe.skipIf(skip)('sneakpeek -t fswatch on a real systemd', () => {
  it('sets up fswatch@<ID>.service for a container: template, env file, running unit', () => {
    const r = run(['-n', A]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${A} fswatch@${idA}.service started ${logOf(idA)}\n`);
    expect(r.code).toBe(0);
    expect(sd.systemctl('is-active', `fswatch@${idA}.service`).stdout.trim()).toBe('active');
    const cfg = parseConfig(cfgText);
    expect(readFileSync(templateFile(), 'utf8')).toBe(renderTemplate(cfg, fswatchSpec(cfg)));
    const env = readFileSync(path.join(envDir(), `${idA}.env`), 'utf8');
    const upper = docker('inspect', '-f', '{{.GraphDriver.Data.UpperDir}}', A);
    expect(env).toMatch(/^# managed by sneakpeek/);
    expect(env).toContain(`\nSNEAKPEEK_CONTAINER=${idA}\nSNEAKPEEK_WATCH_DIR=${upper}\nSNEAKPEEK_IMAGE_DIRS=${upper}/bin `);
    expect(statSync(path.join(envDir(), `${idA}.env`)).mode & 0o777).toBe(0o600);
    expect(statSync(logOf(idA)).mode & 0o777).toBe(0o600);
  });

  it('logs creates, appends, renames, deletes and attribute changes, with container paths derivable; reads do not show', async () => {
    const header = (await newLines(idA, 0, [/^sneakpeek fswatch: /], 20_000))[0]!;
    const upper = upperDirOfHeader(header);
    expect(upper).toBe(docker('inspect', '-f', '{{.GraphDriver.Data.UpperDir}}', A));
    const parse = (l: string) => parseFswatchLine(l, upper!);
    const events = (lines: string[]) => lines.map(parse).filter((e) => e !== undefined);
    let probes = 0;
    /**
     * Create probe files in container directory `dir` until fswatch reports one (deadline 20 s):
     * then `dir` is watched, and every event before the probe's is in the log. Returns the
     * index of the probe's line.
     */
    const probe = async (dir: string): Promise<number> => {
      const end = Date.now() + 20_000;
      for (;;) {
        const file = `${dir === '/' ? '' : dir}/.sp-probe-${++probes}`;
        exec(A, `touch ${file}`);
        // fswatch reports in batches (--latency, 1 s by default): give each probe a few of them.
        for (const until = Date.now() + 3000; Date.now() < until; ) {
          const i = logLines(idA).findIndex((l) => parse(l)?.path === file && parse(l)!.flags.includes('Created'));
          if (i >= 0) return i;
          await sleep(100);
        }
        if (Date.now() > end) throw new Error(`fswatch never reported a probe file in ${dir} (last: ${file})`);
      }
    };
    /**
     * Run `script` in A, then wait (deadline) for a probe in /: fswatch reports in order, so
     * once the probe shows, every event of the script is in the log. The step's events.
     */
    const step = async (script: string) => {
      const from = logLines(idA).length;
      exec(A, script);
      const to = await probe('/');
      return events(logLines(idA).slice(from, to)).map((e) => `${e.path} ${e.flags.join(' ')}`);
    };

    // The header comes from ExecStartPre, before fswatch set its watches: wait until it reports.
    await probe('/');
    // First write under /tmp copies /tmp up into UpperDir (a rename): fswatch takes it on as
    // one of its image-dir roots on a later turn of its loop. Probe until it does, then watch the file ops.
    expect(await step('mkdir /tmp/work')).toContain('/tmp Created MovedTo');
    await probe('/tmp/work');
    const created = await step('echo hello > /tmp/work/new.txt');
    expect(created).toContain('/tmp/work/new.txt Created');
    const appended = await step('echo more >> /tmp/work/new.txt');
    expect(appended).toContain('/tmp/work/new.txt Updated');
    expect(appended.join('\n')).not.toContain('Created');
    const renamed = await step('mv /tmp/work/new.txt /tmp/work/renamed.txt');
    expect(renamed).toEqual(expect.arrayContaining([expect.stringMatching(/^\/tmp\/work\/new\.txt .*MovedFrom/), expect.stringMatching(/^\/tmp\/work\/renamed\.txt .*MovedTo/)]));
    const removed = await step('rm /tmp/work/renamed.txt');
    expect(removed).toContain('/tmp/work/renamed.txt Removed');
    expect(await step('touch /tmp/work/mode')).toContain('/tmp/work/mode Created');
    const chmodded = await step('chmod 600 /tmp/work/mode');
    expect(chmodded).toContain('/tmp/work/mode AttributeModified');

    // An image directory the container changes later: copied up with its parents (only the
    // top one, /data, is renamed into a watched directory), then watched as a root.
    expect(await step('echo one >> /data/old/deep/c.txt')).toContain('/data Created MovedTo');
    await probe('/data/old/deep');
    expect(await step('echo two >> /data/old/deep/c.txt')).toContain('/data/old/deep/c.txt Updated');

    // Plain reads and listings: nothing before a sentinel written after them (fswatch reports in order).
    const before = logLines(idA).length;
    exec(A, 'cat /etc/motd /data/keep.txt /data/old/deep/c.txt /tmp/work/mode >/dev/null; ls -laR /data /tmp /etc >/dev/null; head -c 10 /bin/busybox >/dev/null');
    const sentinel = await probe('/');
    expect(logLines(idA).slice(before, sentinel)).toEqual([]);
  });

  it('a second run changes nothing: same files, same process', () => {
    const stamp = (p: string) => `${statSync(p).mtimeMs} ${readFileSync(p, 'utf8')}`;
    const before = [stamp(templateFile()), stamp(path.join(envDir(), `${idA}.env`)), show(`fswatch@${idA}.service`, 'MainPID')];
    const r = run(['-n', A, '-v']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${A} fswatch@${idA}.service running ${logOf(idA)}\n`);
    expect(r.stderr).toContain(`${templateFile()} unchanged`);
    expect(r.stderr).not.toContain('daemon-reload');
    expect([stamp(templateFile()), stamp(path.join(envDir(), `${idA}.env`)), show(`fswatch@${idA}.service`, 'MainPID')]).toEqual(before);
  });

  it('a config change updates the template, reloads once and restarts the instance', () => {
    const pid = show(`fswatch@${idA}.service`, 'MainPID');
    try {
      writeConfig('fswatch: {flags: [--recursive, --timestamp, --utc-time, --format-time, "%FT%TZ", --event-flags, --allow-overflow, --latency, "0.5"]}\n');
      const r = run(['-n', A, '-v']);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`${A} fswatch@${idA}.service restarted ${logOf(idA)}\n`);
      expect(r.stderr).toContain(`${templateFile()} updated`);
      expect(readFileSync(templateFile(), 'utf8')).toContain('--latency 0.5 ');
      expect(show(`fswatch@${idA}.service`, 'MainPID')).not.toBe(pid);
      expect(show(`fswatch@${idA}.service`, 'ExecMainStatus')).toBe('0');
    } finally {
      writeConfig();
    }
  });

  it.each([
    ['$(touch CANARY)'], ['x;touch CANARY'], ['`touch CANARY`'], ["a'b"], ['-rf'], ['a\ntouch CANARY'], ['../../etc'],
  ])('hostile container name %j: refused, exit 2, nothing run', (name) => {
    const r = run(['-n', name.replace('CANARY', canary)]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/invalid container name|--help/);
    expect(existsSync(canary)).toBe(false);
  });

  it.each([
    [['--purge', '-n', A], /--purge goes with --stop/],
    [['-n', A, '--config', '/nonexistent/sp.yaml'], /no such file/],
  ])('usage errors exit 2 with one line: %j', (args, re) => {
    const r = run(args as string[]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(re);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  it('a hostile config value never reaches a shell: the unit gets literal arguments', () => {
    let back: Run;
    try {
      writeConfig(`fswatch: {flags: [--recursive, --event-flags, --allow-overflow, --exclude, "$(touch ${canary})"]}\n`);
      const r = run(['-n', A]);
      expect(r.code).toBe(0);
      expect(existsSync(canary)).toBe(false);
      // The real argv of the running fswatch, read inside the instance's PID namespace.
      const pid = show(`fswatch@${idA}.service`, 'MainPID');
      const argv = spawnSync('nsenter', ['-t', String(sd.pid), '-m', '-p', '--', 'cat', `/proc/${pid}/cmdline`], { encoding: 'utf8' }).stdout.split('\0');
      expect(argv).toEqual(expect.arrayContaining(['--exclude', `$(touch ${canary})`, '--event', 'Created']));
    } finally {
      writeConfig();
      back = run(['-n', A]);
    }
    expect(back.code).toBe(0);
  });

  it('an instance that does not stay up is an error with its status (fswatch 1.14 refuses CloseWrite)', () => {
    let back: Run;
    try {
      writeConfig('fswatch: {events: [Created, CloseWrite]}\n');
      const r = run(['-n', A]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(new RegExp(`^sneakpeek: ${A}: fswatch@${idA}\\.service did not stay up: .*inactive`, 'm'));
    } finally {
      writeConfig();
      back = run(['-n', A]);
    }
    expect(back.stdout).toBe(`${A} fswatch@${idA}.service started ${logOf(idA)}\n`);
    expect(back.code).toBe(0);
  });

  it('a missing fswatch binary on the node fails every container before anything is written', () => {
    const before = readFileSync(templateFile(), 'utf8');
    try {
      writeConfig('paths: {fswatch: /usr/bin/no-such-fswatch}\n');
      const r = run(['-n', A]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${A}: /usr/bin/no-such-fswatch not found on this node (config paths)`);
      expect(readFileSync(templateFile(), 'utf8')).toBe(before);
    } finally {
      writeConfig();
    }
  });

  it('warns when the node\'s inotify limits are below what it must watch (limits read on the node)', () => {
    // A `cat` first on PATH that reports tiny limits for the two inotify files, the real cat otherwise.
    const shim = path.join(tmp, 'lowlimits');
    mkdirSync(shim, { recursive: true });
    writeFileSync(path.join(shim, 'cat'), `#!/bin/sh
case "$1" in /proc/sys/fs/inotify/max_user_watches|/proc/sys/fs/inotify/max_user_instances) echo 0; exit 0 ;; esac
exec /bin/cat "$@"
`, { mode: 0o755 });
    const r = runTool('sneakpeek', ['-t', 'fswatch', '-n', A], { env: { ...(sd.env as Record<string, string>), SNEAKPEEK_CONFIG: cfgFile, PATH: `${shim}:${sd.env.PATH}` } });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${A} fswatch@${idA}.service running ${logOf(idA)}\n`);
    expect(r.stderr).toMatch(/^sneakpeek: warning: localhost: fs\.inotify\.max_user_watches is 0, below the \d+ directories to watch: .*sysctl -w fs\.inotify\.max_user_watches=\d+\)$/m);
    expect(r.stderr).toMatch(/^sneakpeek: warning: localhost: fs\.inotify\.max_user_instances is 0, below the 1 fswatch instances/m);
  });

  it('--dry-run prints the node script and runs nothing', () => {
    const r = run(['-n', A, '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^# node: localhost\n# sneakpeek node script \(generated\)/);
    expect(r.stdout).toMatch(new RegExp(`\\nsp_fswatch 0 docker ${A} \\d+ `));
    expect(show(`fswatch@${idA}.service`, 'ActiveState')).toBe('active');
  });

  it('an unknown container fails alone: exit 1, one line, nothing installed for it', () => {
    const r = run(['-n', 'sp-fswatch-nope']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    // one container: its one error line is the whole story (no batch summary)
    expect(r.stderr).toMatch(/^sneakpeek: sp-fswatch-nope: .*No such container[^\n]*\n$/);
    // Only A's instance: nothing was loaded for the unknown container.
    const units = sd.systemctl('list-units', '--all', '--plain', '--no-legend', 'fswatch@*').stdout.split('\n').filter(Boolean).map((l) => l.split(/\s+/)[0]);
    expect(units).toEqual([`fswatch@${idA}.service`]);
  });

  it('cluster-wide (--pods-file): one node script for the node, -e excludes a pod, a gone container fails alone', () => {
    const gone = 'f'.repeat(64);
    const pods = {
      kind: 'PodList',
      items: [
        pod({ name: 'web-0', hostIP: '127.0.0.1', containers: [{ name: 'web', id: docker('inspect', '-f', '{{.Id}}', A) }] }),
        pod({ name: 'db-0', hostIP: '127.0.0.1', containers: [{ name: 'db', id: docker('inspect', '-f', '{{.Id}}', B) }] }),
        pod({ name: 'gone-0', hostIP: '127.0.0.1', containers: [{ name: 'gone', id: gone }] }),
      ],
    };
    const podsFile = path.join(tmp, 'pods.json');
    writeFileSync(podsFile, JSON.stringify(pods));
    const r = run(['--pods-file', podsFile, '-e', 'db-0']);
    expect(r.stdout).toBe(`127.0.0.1,${idA} fswatch@${idA}.service running ${logOf(idA)}\n`);
    expect(r.stderr).toMatch(new RegExp(`^sneakpeek: 127\\.0\\.0\\.1,ffffffffffff: .*No such container`, 'm'));
    expect(r.stderr.trimEnd().split('\n').pop()).toBe('1 ok, 1 failed');
    expect(r.code).toBe(1);
    expect(existsSync(path.join(envDir(), `${idB}.env`))).toBe(false);
    expect(existsSync(path.join(envDir(), 'ffffffffffff.env'))).toBe(false);

    const both = run(['--pods-file', podsFile, '-e', 'gone-0']);
    expect(both.code).toBe(0);
    expect(both.stdout.split('\n').filter(Boolean).sort()).toEqual(
      [`127.0.0.1,${idA} fswatch@${idA}.service running ${logOf(idA)}`, `127.0.0.1,${idB} fswatch@${idB}.service started ${logOf(idB)}`].sort(),
    );
    expect(both.stderr).toBe('2 ok, 0 failed\n');
  });

  it('--stop: stops the instance and removes its env file; the template stays while B still uses it', () => {
    const r = run(['--stop', '-n', A]);
    expect(r.stdout).toBe(`${A} fswatch@${idA}.service stopped\n`);
    expect(r.code).toBe(0);
    expect(sd.systemctl('is-active', `fswatch@${idA}.service`).stdout.trim()).toBe('inactive');
    expect(existsSync(path.join(envDir(), `${idA}.env`))).toBe(false);
    expect(existsSync(templateFile())).toBe(true);
    // Again: nothing to do, still exit 0.
    const again = run(['--stop', '-n', A]);
    expect(again.stdout).toBe(`${A} fswatch@${idA}.service absent\n`);
    expect(again.code).toBe(0);
    // --purge while B's instance runs keeps the template, with a warning.
    const purge = run(['--stop', '--purge', '-n', A]);
    expect(purge.code).toBe(0);
    expect(purge.stderr).toMatch(/template .*fswatch@\.service kept: 1 other instance/);
    expect(existsSync(templateFile())).toBe(true);
  });

  it('--stop --purge for a removed container (by id) leaves nothing of ours behind', () => {
    dockerTry('rm', '-f', B);
    const r = run(['--stop', '--purge', '-n', idB, '-v']);
    expect(r.stdout).toBe(`${idB} fswatch@${idB}.service stopped\n`);
    expect(r.stderr).toContain(`${templateFile()} removed`);
    expect(r.code).toBe(0);
    expect(existsSync(templateFile())).toBe(false);
    expect(existsSync(path.join(sd.dir, 'env'))).toBe(false);
    expect(sd.systemctl('list-units', '--all', '--plain', '--no-legend', 'fswatch@*').stdout.trim()).toBe('');
    // The logs are the user's: kept.
    expect(existsSync(logOf(idA))).toBe(true);
    const again = run(['--stop', '--purge', '-n', idB, '-v']);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(`${idB} fswatch@${idB}.service absent\n`);
    expect(again.stderr).toContain(`${templateFile()} absent`);
  });
});
