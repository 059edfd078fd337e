// Real ssh "nodes" for tests: our own sshd on loopback addresses 127.0.0.2, 127.0.0.3, …
// (one ListenAddress line each, never 0.0.0.0), with a host key and a client key generated
// into a temp dir, an AuthorizedKeysFile of its own and LogLevel VERBOSE so sessions can be
// counted. The user's ~/.ssh is never touched: the sneakpeek config it writes points ssh at
// the test key and a known_hosts of its own (cfg.ssh.identityFile/port/options).
//
//   const sshd = await startSshd({ addresses: ['127.0.0.2', '127.0.0.3'] });
//   const cfgFile = sshd.writeConfig({ concurrency: 4 });   // a sneakpeek.config.yaml for tests
//   const mark = sshd.mark();
//   await runToolAsync('sneakpeek', [...], { env: { SNEAKPEEK_CONFIG: cfgFile } });
//   sshd.sessions(mark)   // Map address → "Accepted publickey" count since the mark
//   await sshd.stop();    // kills only the sshd it started, removes the temp dir
//
// `sshdConfig` lines are appended last (e.g. a `Match LocalAddress 127.0.0.4` block).
// `silentListener(addr)` is a TCP port that accepts and never speaks: a hung node, for
// ConnectTimeout tests. Requires openssh-server (/usr/sbin/sshd) and ssh-keygen.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';

export const SSHD = '/usr/sbin/sshd';

export interface Sshd {
  port: number;
  /** The sshd this helper started (its sessions are its descendants). */
  pid: number;
  addresses: string[];
  dir: string;
  logFile: string;
  identityFile: string;
  knownHosts: string;
  /** ssh -o options that keep ssh away from the user's own known_hosts and agent. */
  sshOptions: string[];
  /** Write a sneakpeek config (YAML) that reaches these nodes; `extra` is merged on top. */
  writeConfig(extra?: Record<string, unknown>, name?: string): string;
  /** The log's current length: count sessions from here. */
  mark(): number;
  /** "Accepted publickey" sessions per node address since `mark`. */
  sessions(mark?: number): Map<string, number>;
  /** The log text since `mark`. */
  log(mark?: number): string;
  stop(): Promise<void>;
}

export interface SshdOptions {
  addresses: string[];
  /** Appended at the end of sshd_config (Match blocks must come last). */
  sshdConfig?: string;
}

/** A port that is free on every given address (probed on the first). */
async function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, address, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Resolve once `address:port` answers with an SSH banner. */
function banner(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect({ host: address, port });
    const done = (ok: boolean) => {
      c.destroy();
      resolve(ok);
    };
    c.once('data', (d) => done(d.toString().startsWith('SSH-')));
    c.once('error', () => done(false));
    c.setTimeout(2000, () => done(false));
  });
}

export async function startSshd(opts: SshdOptions): Promise<Sshd> {
  for (const a of opts.addresses) if (!/^127\.\d+\.\d+\.\d+$/.test(a) || a === '127.0.0.1') throw new Error(`test sshd: ${a} is not a loopback node address (127.0.0.2 and up)`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-sshd-'));
  chmodSync(dir, 0o755); // non-root test users read the authorized keys as themselves
  const key = (name: string) => {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `sneakpeek-test-${name}`, '-f', path.join(dir, name)]);
    return readFileSync(path.join(dir, `${name}.pub`), 'utf8').trim();
  };
  const hostPub = key('host_ed25519');
  const clientPub = key('client_ed25519');
  const authorized = path.join(dir, 'authorized_keys');
  writeFileSync(authorized, `${clientPub}\n`, { mode: 0o644 });
  const port = await freePort(opts.addresses[0]!);
  const knownHosts = path.join(dir, 'known_hosts');
  writeFileSync(knownHosts, opts.addresses.map((a) => `[${a}]:${port} ${hostPub.split(' ').slice(0, 2).join(' ')}\n`).join(''));
  const logFile = path.join(dir, 'sshd.log');
  const config = path.join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      ...opts.addresses.map((a) => `ListenAddress ${a}`),
      `HostKey ${path.join(dir, 'host_ed25519')}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${authorized}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      // The temp dir lives under /tmp (mode 1777), which StrictModes refuses.
      'StrictModes no',
      'UsePAM no',
      'LogLevel VERBOSE',
      'MaxStartups 200:30:400',
      'PrintMotd no',
      'AcceptEnv none',
      opts.sshdConfig ?? '',
      '',
    ].join('\n'),
  );
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // privilege separation dir
  execFileSync(SSHD, ['-t', '-f', config]);
  writeFileSync(logFile, '');
  const child: ChildProcess = spawn(SSHD, ['-D', '-f', config, '-E', logFile], { stdio: 'ignore' });
  let exited = false;
  child.on('exit', () => (exited = true));
  // A test process that dies without afterAll must not leave our sshd listening.
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  for (let i = 0; ; i++) {
    const up = await Promise.all(opts.addresses.map((a) => banner(a, port)));
    if (up.every(Boolean)) break;
    if (exited || i > 100) {
      child.kill('SIGKILL');
      throw new Error(`test sshd did not come up: ${readFileSync(logFile, 'utf8').trim().split('\n').pop()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const sshOptions = [
    `UserKnownHostsFile=${knownHosts}`,
    'GlobalKnownHostsFile=/dev/null',
    'StrictHostKeyChecking=yes',
    'IdentitiesOnly=yes',
    'IdentityAgent=none',
    'LogLevel=ERROR',
  ];
  const identityFile = path.join(dir, 'client_ed25519');
  const readLog = (mark = 0) => readFileSync(logFile).subarray(mark).toString('utf8');
  return {
    port,
    pid: child.pid!,
    addresses: opts.addresses,
    dir,
    logFile,
    identityFile,
    knownHosts,
    sshOptions,
    writeConfig(extra = {}, name = 'sneakpeek.config.yaml') {
      const base = { ssh: { user: 'root', port, identityFile, connectTimeout: 3, options: sshOptions }, concurrency: 8 };
      const merged = deepMerge(base, extra);
      const file = path.join(dir, name);
      writeFileSync(file, stringify(merged));
      return file;
    },
    mark: () => readFileSync(logFile).length,
    log: readLog,
    sessions(mark = 0) {
      // "Connection from C port P on NODE port N" then "Accepted publickey for U from C port P".
      const nodeOf = new Map<string, string>();
      const out = new Map<string, number>(opts.addresses.map((a) => [a, 0]));
      for (const line of readLog(mark).split('\n')) {
        let m = line.match(/^Connection from (\S+) port (\d+) on (\S+) port \d+/);
        if (m) nodeOf.set(`${m[1]}:${m[2]}`, m[3]!);
        m = line.match(/^Accepted publickey for \S+ from (\S+) port (\d+)/);
        if (m) {
          const node = nodeOf.get(`${m[1]}:${m[2]}`) ?? '?';
          out.set(node, (out.get(node) ?? 0) + 1);
        }
      }
      return out;
    },
    async stop() {
      process.removeListener('exit', reap);
      if (!exited) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur)
        ? deepMerge(cur as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** A TCP listener that accepts and never answers: a node whose sshd hangs. */
export async function silentListener(address: string, port: number): Promise<{ close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const s = net.createServer((c) => {
    sockets.add(c);
    c.on('error', () => {});
    c.on('close', () => sockets.delete(c));
  });
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, address, resolve);
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of sockets) c.destroy();
        s.close(() => resolve());
      }),
  };
}

export const sshdInstalled = () => existsSync(SSHD);
