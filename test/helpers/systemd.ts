// A private, real systemd for integration tests, and `systemd-analyze verify` of rendered units.
//
// How sneakpeek's node script reaches it (what works, checked on Debian 12 / systemd 252):
// the node script runs on this host as usual (`sh -s`, host mount namespace, so the docker
// CLI still finds /run/docker.sock), with cfg.unitDir = the instance's unit dir (its
// SYSTEMD_UNIT_PATH), cfg.envDir / cfg.log.dir under the instance's temp dir, and PATH
// starting with `binDir`, whose `systemctl` is `nsenter -t PID -m -p -- /bin/systemctl "$@"`.
// Files are shared (same file system; only /run differs), so the templates and env files
// sneakpeek writes are the ones the private systemd loads, and every systemctl call of the
// script talks to the private instance. Running the whole script under `nsenter … sh -s`
// does not work as is: the private /run (tmpfs) hides the docker socket. The shim calls
// /bin/systemctl by absolute path: inside the namespace the same PATH would find the shim again.
//
// Isolation: the unit path holds ONLY the test's unit dir (no trailing ':', so the host's
// units — tmpfiles cleanup of /tmp, gettys… — are never loaded); /run is a fresh tmpfs; the
// instance lives in its own cgroup (`sneakpeek-test-<name>-<n>` in the name=systemd and unified
// hierarchies) with accounting off (a private system.conf bind-mounted over the host's, in
// its own mount namespace only), so two test instances never share system.slice. stop()
// kills only its systemd pid (PID 1 of its namespace: everything in it dies with it), then
// removes its cgroups and temp dir.
//
// journald (`{ journal: true }`): the instance also runs systemd-journald from units written
// here (adapted from Debian's: no /dev/log symlink — /dev is the host's devtmpfs —, no audit
// socket, no netlink at all so it can never switch the host's kernel auditing), with a private
// journald.conf bind-mounted in its mount namespace only: Storage=volatile (journal files on
// the instance's private /run tmpfs, /run/log/journal; the host's /var/log/journal is covered
// by an empty tmpfs in that namespace besides), ReadKMsg=no (the host kernel log stays out),
// no forwarding. Units with StandardOutput=journal log there; `journalctl` in binDir (and
// journalctl() below) read it through nsenter. Everything it writes dies with the namespace.
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, readdirSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { shQuote } from '../../lib/quote.ts';
import { commandWorks } from './prereq.ts';

export const SYSTEMD_BIN = '/lib/systemd/systemd';
export const SYSTEMCTL_BIN = '/bin/systemctl';
export const JOURNALCTL_BIN = '/bin/journalctl';
export const JOURNALD_BIN = '/lib/systemd/systemd-journald';

/** Targets that default dependencies of services name; each a bare [Unit]. */
export const STUB_TARGETS = [
  'sysinit.target', 'basic.target', 'shutdown.target', 'multi-user.target', 'sockets.target',
  'timers.target', 'paths.target', 'local-fs.target', 'network.target', 'slices.target',
];

export const systemdAvailable = () =>
  existsSync(SYSTEMD_BIN) && commandWorks('systemd-analyze', ['--version']) && commandWorks('nsenter', ['--version']) && commandWorks('unshare', ['--version']);
export const journaldAvailable = () => existsSync(JOURNALD_BIN) && existsSync(JOURNALCTL_BIN) && commandWorks('setpriv', ['--version']);

/** Write the stub targets (and test.target) into `dir`. */
export function writeStubUnits(dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const t of [...STUB_TARGETS, 'test.target']) writeFileSync(path.join(dir, t), `[Unit]\nDescription=stub ${t}\n`);
}

export interface VerifyResult {
  status: number;
  output: string;
}

/**
 * `systemd-analyze verify` of instance `<tool>@<instance>.service` of a rendered template, in a
 * temp unit dir with the stub targets (SYSTEMD_UNIT_PATH = that dir only). Extra files (e.g.
 * the instance's env file) can be placed with `files`.
 */
export function verifyInstance(templateName: string, templateText: string, instance = 'example', files: Record<string, string> = {}): VerifyResult {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-verify-'));
  try {
    writeStubUnits(dir);
    writeFileSync(path.join(dir, templateName), templateText);
    for (const [p, text] of Object.entries(files)) {
      mkdirSync(path.dirname(p), { recursive: true });
      writeFileSync(p, text);
    }
    const unit = path.join(dir, templateName.replace('@.', `@${instance}.`));
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', unit], {
      encoding: 'utf8',
      env: { ...process.env, SYSTEMD_UNIT_PATH: dir, SYSTEMD_LOG_LEVEL: 'notice' },
    });
    return { status: r.status ?? 1, output: `${r.stdout}${r.stderr}`.trim() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** journald's units for a private instance; `logFile` gets journald's own messages. */
export function journaldUnits(logFile: string): Record<string, string> {
  const socket = (desc: string, listen: string[], extra: string[] = []) =>
    [
      '[Unit]',
      `Description=${desc} (sneakpeek test instance)`,
      'DefaultDependencies=no',
      'Before=sockets.target',
      'IgnoreOnIsolate=yes',
      '',
      '[Socket]',
      ...listen,
      'PassCredentials=yes',
      'PassSecurity=yes',
      'ReceiveBuffer=8M',
      'Service=systemd-journald.service',
      'SocketMode=0666',
      'Timestamping=us',
      ...extra,
      '',
    ].join('\n');
  return {
    'systemd-journald.socket': socket('Journal Socket', ['ListenDatagram=/run/systemd/journal/socket', 'ListenStream=/run/systemd/journal/stdout']),
    // Debian's has Symlinks=/dev/log: /dev is shared with the host here, so it must not.
    'systemd-journald-dev-log.socket': socket('Journal Socket (/run/systemd/journal/dev-log)', ['ListenDatagram=/run/systemd/journal/dev-log'], ['SendBuffer=8M']),
    'systemd-journald.service': [
      '[Unit]',
      'Description=Journal Service (sneakpeek test instance: volatile, private /run)',
      'DefaultDependencies=no',
      'Requires=systemd-journald.socket',
      'After=systemd-journald.socket systemd-journald-dev-log.socket',
      'Before=sysinit.target',
      'IgnoreOnIsolate=yes',
      '',
      '[Service]',
      'Type=notify',
      `ExecStart=${JOURNALD_BIN}`,
      'Sockets=systemd-journald.socket systemd-journald-dev-log.socket',
      'RuntimeDirectory=systemd/journal',
      'RuntimeDirectoryPreserve=yes',
      'FileDescriptorStoreMax=4224',
      'Restart=always',
      'RestartSec=0',
      // No AF_NETLINK: no audit socket, so the host's kernel auditing is never touched.
      'RestrictAddressFamilies=AF_UNIX',
      'LimitNOFILE=524288',
      'Environment=SYSTEMD_LOG_TARGET=console',
      `StandardOutput=append:${logFile}`,
      'StandardError=inherit',
      '',
    ].join('\n'),
  };
}

/** The test instance's journald.conf (bind-mounted over /etc/systemd/journald.conf in its namespace). */
export const JOURNALD_CONF = [
  '[Journal]',
  'Storage=volatile',
  'RuntimeMaxUse=64M',
  'ReadKMsg=no',
  'ForwardToSyslog=no',
  'ForwardToKMsg=no',
  'ForwardToConsole=no',
  'ForwardToWall=no',
  '',
].join('\n');

/**
 * The `journalctl` shim: journalctl in the instance's namespaces. nsenter forks and does not pass
 * signals on, so the child gets a parent-death signal (a reader killed by pid takes its
 * journalctl with it), and it runs in the caller's directory (entering a mount namespace
 * resets it to /, where a relative --cursor-file would land).
 */
export function journalctlShim(pid: number): string {
  return `#!/bin/sh
exec nsenter -t ${pid} -m -p -- setpriv --pdeathsig TERM -- /bin/sh -c 'cd "$1" 2>/dev/null; shift; exec ${JOURNALCTL_BIN} "$@"' journalctl "$PWD" "$@"
`;
}

export interface PrivateSystemdOptions {
  /** Run systemd-journald in the instance (units' StandardOutput=journal, journalctl shim). */
  journal?: boolean;
  /** Bind mounts [source, target] made in its mount namespace only, before systemd starts: a
   * second "node" whose units see their own env dir at the same path as the first's. */
  binds?: [string, string][];
}

export interface PrivateSystemd {
  /** systemd's pid on the host: PID 1 of its namespaces. The only process stop() kills. */
  pid: number;
  /** Temp root of this instance: units/, bin/, env/, log/ below it. */
  dir: string;
  /** SYSTEMD_UNIT_PATH: the only place the instance loads units from. */
  unitDir: string;
  /** Holds the `systemctl` shim (and `journalctl` with journald); put first on PATH of the node script. */
  binDir: string;
  /** process.env with PATH = binDir first: give it to a child sneakpeek (or assign for in-process runs). */
  env: NodeJS.ProcessEnv;
  /** systemctl against the private instance. */
  systemctl(...args: string[]): SpawnSyncReturns<string>;
  /** journalctl against the instance's journal (only with `{ journal: true }`). */
  journalctl(...args: string[]): SpawnSyncReturns<string>;
  stop(): Promise<void>;
}

// Hybrid hosts (these machines): name=systemd v1 + unified v2. A pure v2 host: /sys/fs/cgroup.
const CGROUP_HIERARCHIES = ['/sys/fs/cgroup/systemd', '/sys/fs/cgroup/unified', '/sys/fs/cgroup'];
let serial = 0;

/** Remove a cgroup subtree, deepest first (only empty cgroups can go; the kill emptied them). */
function removeCgroupTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroupTree(path.join(dir, e.name));
  for (let i = 0; i < 50; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch {
      spawnSync('sleep', ['0.1']);
    }
  }
}

function childOf(pid: number): number | undefined {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return kids.length ? Number(kids[0]) : undefined;
  } catch {
    return undefined;
  }
}

/** `pid` exists and is not a zombie (its /proc entry can vanish between any two reads). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Start a private systemd (PID 1 of a new PID + mount namespace) whose unit path is only its own dir. */
export async function startPrivateSystemd(name: string, opts: PrivateSystemdOptions = {}): Promise<PrivateSystemd> {
  if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`bad instance name ${name}`);
  const dir = mkdtempSync(path.join(os.tmpdir(), `sp-systemd-${name}-`));
  const unitDir = path.join(dir, 'units');
  const binDir = path.join(dir, 'bin');
  if (unitDir.includes(':')) throw new Error('unit dir must not contain ":" (SYSTEMD_UNIT_PATH would fall back to the host units)');
  writeStubUnits(unitDir);
  mkdirSync(binDir);
  const journalConf = path.join(dir, 'journald.conf');
  if (opts.journal) {
    for (const [unit, text] of Object.entries(journaldUnits(path.join(dir, 'journald.log')))) writeFileSync(path.join(unitDir, unit), text);
    writeFileSync(journalConf, JOURNALD_CONF);
    // Up with the instance: test.target pulls journald and its sockets in.
    writeFileSync(path.join(unitDir, 'test.target'), '[Unit]\nDescription=stub test.target\nWants=systemd-journald.socket systemd-journald-dev-log.socket systemd-journald.service\n');
  }
  const conf = path.join(dir, 'system.conf');
  writeFileSync(conf, '[Manager]\nDefaultTasksAccounting=no\nDefaultMemoryAccounting=no\nDefaultIOAccounting=no\nDefaultCPUAccounting=no\nDefaultIPAccounting=no\nLogTarget=console\n');
  const cg = `sneakpeek-test-${name}-${process.pid}-${++serial}`;
  const hierarchies = CGROUP_HIERARCHIES.filter((h) => existsSync(path.join(h, 'cgroup.procs'))).slice(0, 2);
  // Runs as the namespace's first process, then execs systemd (so systemd is PID 1).
  const inner = [
    'set -e',
    ...hierarchies.map((h) => `mkdir -p ${h}/${cg} && echo $$ > ${h}/${cg}/cgroup.procs`),
    `mount --bind ${conf} /etc/systemd/system.conf`,
    ...(opts.journal
      ? [`mount --bind ${journalConf} /etc/systemd/journald.conf`, 'if [ -d /var/log/journal ]; then mount -t tmpfs -o mode=0755 tmpfs /var/log/journal; fi']
      : []),
    'mount -t tmpfs -o mode=0755 tmpfs /run',
    ...(opts.binds ?? []).map(([src, dst]) => `mount --bind ${shQuote(src)} ${shQuote(dst)}`),
    'mkdir -p /run/systemd',
    `SYSTEMD_UNIT_PATH=${unitDir} exec ${SYSTEMD_BIN} --system --unit=test.target`,
  ].join('\n');
  const log = path.join(dir, 'systemd.log');
  writeFileSync(log, '');
  const out = openSync(log, 'a');
  const child = spawn('unshare', ['--pid', '--fork', '--mount', '--mount-proc', '--propagation', 'private', 'sh', '-c', inner], {
    detached: true,
    stdio: ['ignore', out, out],
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' },
  });
  child.unref();
  closeSync(out);
  const unsharePid = child.pid!;
  let pid: number | undefined;
  // A test process that dies without afterAll must not leave this systemd (and its units)
  // running: kill its PID 1 (only that pid: the rest of its namespace dies with it).
  const reap = () => {
    const target = pid ?? childOf(unsharePid);
    if (target) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  };
  process.once('exit', reap);
  const stopAll = async () => {
    process.removeListener('exit', reap);
    if (pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    for (let i = 0; i < 50 && alive(unsharePid); i++) await sleep(100);
    for (const h of hierarchies) removeCgroupTree(path.join(h, cg));
    for (const h of ['/sys/fs/cgroup']) {
      // v1 controller hierarchies: accounting is off, but remove anything systemd made there anyway.
      for (const e of existsSync(h) ? readdirSync(h) : []) {
        const p = path.join(h, e, cg);
        if (!CGROUP_HIERARCHIES.includes(path.join(h, e)) && existsSync(p) && statSync(p).isDirectory()) removeCgroupTree(p);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const systemctl = (...args: string[]) =>
    spawnSync('nsenter', ['-t', String(pid), '-m', '-p', '--', SYSTEMCTL_BIN, ...args], { encoding: 'utf8' });
  const journalctl = (...args: string[]) => {
    if (!opts.journal) throw new Error('this private systemd runs no journald (startPrivateSystemd(name, { journal: true }))');
    return spawnSync('nsenter', ['-t', String(pid), '-m', '-p', '--', JOURNALCTL_BIN, ...args], { encoding: 'utf8', timeout: 30_000, maxBuffer: 256 << 20 });
  };
  // systemd is unshare's only child; wait until it answers on its private bus.
  let lastErr = '';
  for (const end = Date.now() + 30_000; Date.now() < end; ) {
    pid ??= childOf(unsharePid);
    if (pid) {
      // Bounded: a systemd that hangs on its bus must not stall the deadline.
      const r = spawnSync('nsenter', ['-t', String(pid), '-m', '-p', '--', SYSTEMCTL_BIN, 'is-system-running'], { encoding: 'utf8', timeout: 5000 });
      lastErr = `${r.stdout}${r.stderr}`.trim();
      if (/^(running|degraded|starting)/.test(lastErr)) break;
    }
    if (child.exitCode !== null) break;
    await sleep(100);
  }
  if (!pid || !/^(running|degraded|starting)/.test(lastErr)) {
    const text = readFileSync(log, 'utf8').slice(-2000);
    await stopAll();
    throw new Error(`private systemd did not come up (${lastErr}): ${text}`);
  }
  if (opts.journal) {
    // Type=notify: active means journald has its sockets and /run/log/journal open.
    let state = '';
    for (const end = Date.now() + 30_000; Date.now() < end; await sleep(100)) {
      state = spawnSync('nsenter', ['-t', String(pid), '-m', '-p', '--', SYSTEMCTL_BIN, 'is-active', 'systemd-journald.service'], { encoding: 'utf8', timeout: 5000 }).stdout.trim();
      if (state === 'active' || state === 'failed') break;
    }
    if (state !== 'active') {
      const text = `${readFileSync(log, 'utf8').slice(-1000)}${existsSync(path.join(dir, 'journald.log')) ? readFileSync(path.join(dir, 'journald.log'), 'utf8').slice(-1000) : ''}`;
      await stopAll();
      throw new Error(`journald in the private systemd did not come up (${state}): ${text}`);
    }
    writeFileSync(path.join(binDir, 'journalctl'), journalctlShim(pid), { mode: 0o755 });
  }
  writeFileSync(path.join(binDir, 'systemctl'), `#!/bin/sh\nexec nsenter -t ${pid} -m -p -- ${SYSTEMCTL_BIN} "$@"\n`, { mode: 0o755 });
  return {
    pid,
    dir,
    unitDir,
    binDir,
    env: { ...process.env, PATH: `${binDir}:${process.env.PATH ?? '/usr/bin:/bin'}` },
    systemctl,
    journalctl,
    stop: stopAll,
  };
}
