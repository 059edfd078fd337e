// The one module that runs commands. A node script runs either here (`sh -s`) or on a node
// over OpenSSH (`ssh … sh -s`, script on stdin): one process, one session per node.
import { spawn } from 'node:child_process';
import os from 'node:os';
import { checkSshOption, checkSshUser, type Config } from '../config.ts';
import { oneLine } from '../errors.ts';
import { checkNodeAddress } from '../targets.ts';
import { shQuote } from '../quote.ts';

export { checkNodeAddress };


/** One unit of work: a generated POSIX sh script for one node (undefined = this host). */
export interface NodePlan {
  node: string | undefined;
  script: string;
}

export interface NodeRun {
  node: string | undefined;
  code: number;
  stderr: string;
  /** Collected stdout when no onStdout handler was given. */
  stdout: Buffer;
}

/** True when the address names this host, so the script runs without ssh. */
export function isLocalNode(node: string | undefined): boolean {
  if (node === undefined || node === '' || node === 'localhost' || node === os.hostname()) return true;
  for (const addrs of Object.values(os.networkInterfaces()))
    for (const a of addrs ?? []) if (a.address === node) return true;
  return false;
}

/** The argv that runs a script on `node`: ssh with the user's config plus ours. Pure. */
export function nodeCommand(node: string | undefined, cfg: Config, isRoot: boolean): string[] {
  if (isLocalNode(node)) return cfg.sudo && !isRoot ? ['sudo', '-n', 'sh', '-s'] : ['sh', '-s'];
  const host = checkNodeAddress(node!);
  const user = checkSshUser(cfg.ssh.user);
  // ServerAlive: a node that goes away mid-session fails within ~30 s instead of hanging cron.
  const argv = ['ssh', '-o', 'BatchMode=yes', '-o', `ConnectTimeout=${cfg.ssh.connectTimeout}`, '-o', 'ServerAliveInterval=10', '-o', 'ServerAliveCountMax=3'];
  if (cfg.ssh.controlMaster)
    argv.push('-o', 'ControlMaster=auto', '-o', 'ControlPath=~/.ssh/sneakpeek-%C', '-o', 'ControlPersist=60');
  for (const opt of cfg.ssh.options) argv.push('-o', checkSshOption(opt));
  if (cfg.ssh.port !== null) argv.push('-p', String(cfg.ssh.port));
  if (cfg.ssh.identityFile) argv.push('-i', cfg.ssh.identityFile);
  argv.push('-l', user, '--', host);
  // The remote command is a fixed string; every value travels inside the script on stdin.
  argv.push(cfg.sudo && user !== 'root' ? 'sudo -n sh -s' : 'sh -s');
  return argv;
}

export interface RunOptions {
  /** Streamed stdout; return a promise to hold the node's output until the reader catches up. */
  onStdout?: (chunk: Buffer) => void | Promise<void>;
}

/** Run one node's script; resolves with its exit code, never rejects for a failed node. */
export function runNodeScript(plan: NodePlan, cfg: Config, opts: RunOptions = {}): Promise<NodeRun> {
  const argv = nodeCommand(plan.node, cfg, process.getuid?.() === 0);
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    // A handler that throws (output we cannot read) ends this node, not the whole run.
    let broken = '';
    child.stdout.on('data', (c: Buffer) => {
      if (!opts.onStdout) return void out.push(c);
      if (broken) return;
      try {
        const wait = opts.onStdout(c);
        if (wait) {
          child.stdout.pause();
          void wait.then(() => child.stdout.resume());
        }
      } catch (e) {
        broken = `unreadable output from the node: ${oneLine(e)}`;
        child.kill('SIGKILL');
      }
    });
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.stdin.on('error', () => {}); // a node that hangs up early is reported by its exit code
    child.stdin.end(plan.script);
    const finish = (code: number, extra = '') => {
      const stderr = Buffer.concat(err).toString('utf8') + extra + (broken ? `\n${broken}\n` : '');
      resolve({ node: plan.node, code: broken ? 1 : code, stderr, stdout: Buffer.concat(out) });
    };
    child.on('error', (e) => finish(127, `${argv[0]}: ${e.message}`));
    child.on('close', (code, signal) => finish(code ?? (signal ? 255 : 1)));
  });
}

/** Run `work` over items with at most `limit` at once; results in input order. */
export async function pool<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]!);
    }
  });
  await Promise.all(lanes);
  return results;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a local command (argv, no shell surprises: zx quotes each value with shQuote). */
// zx loads on first use (it costs ~0.1 s at start-up that -t files never needs); it quotes
// every interpolated value with our helper, so there is one quoting rule.
async function zx(): Promise<typeof import('zx').$> {
  const { $ } = await import('zx');
  $.quote = shQuote as typeof $.quote;
  return $;
}

export async function runCommand(argv: readonly string[], input?: string, env?: NodeJS.ProcessEnv): Promise<CommandResult> {
  const $ = await zx();
  const p = await $({ quiet: true, nothrow: true, input, ...(env ? { env } : {}) })`${argv}`;
  return { code: p.exitCode ?? 1, stdout: p.stdout, stderr: p.stderr };
}

/** The last meaningful line of a failed command's stderr, for a one-line error. */
export function lastLine(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l && !/^Warning: Permanently added/.test(l));
  return lines[lines.length - 1] ?? '';
}
