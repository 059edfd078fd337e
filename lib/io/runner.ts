// The one module that starts processes, and zx is how it starts them: every child — a node
// script over ssh or `sh -s` on this host, kubectl, an engine call — is a zx ProcessPromise with
// its `input`, `nothrow` (a failed node is a result, not an exception), a `timeout` (its
// deadline: zx kills the whole process tree when it passes) and `kill` (Ctrl-C).
//
// zx is configured here, once: its default shell is bash and its default quote writes bash's
// $'…' strings, which dash (Debian's and Ubuntu's /bin/sh) prints literally. Commands here run
// under /bin/sh, every value quoted by lib/quote.ts's POSIX shQuote. zx is loaded on first use
// (`--help` and `-t files -f` from a file never pay for it), and only its core ($, ProcessPromise):
// the whole of zx (fetch, globs, yaml, …) costs three times as much to load.
//
// On a node, a script always runs as `timeout -k 5 DEADLINE sh -s` (through `sudo -n` unless
// root): the node ends it at its deadline even when the operator is gone, and lib/node-script.sh's
// watchdog ends it as soon as its session is.
import os from 'node:os';
import type { ProcessPromise } from 'zx/core';
import { checkSshOption, checkSshUser, type Config } from '../config.ts';
import { oneLine } from '../errors.ts';
import { shQuote } from '../quote.ts';
import { checkNodeAddress } from '../targets.ts';
import { interruptedBy, onInterrupt, stopped } from './interrupt.ts';

export { checkNodeAddress };

let zx$: typeof import('zx/core').$ | undefined;

/** zx's `$`, set up once for POSIX sh and our quoting. */
export async function zx(): Promise<typeof import('zx/core').$> {
  if (!zx$) {
    const { $ } = await import('zx/core');
    $.shell = '/bin/sh';
    $.prefix = '';
    $.postfix = '';
    $.quote = shQuote as typeof $.quote;
    $.verbose = false;
    $.quiet = true;
    zx$ = $;
  }
  return zx$;
}

/** zx keeps every byte a process prints unless told otherwise: these stores keep nothing. */
function discardStore() {
  const none = () => ({ push: () => 0, length: 0, join: () => '', reduce: <T>(_f: unknown, init: T) => init, *[Symbol.iterator]() {} });
  return { stdout: none(), stderr: none(), stdall: none() } as unknown as NonNullable<Parameters<typeof import('zx/core').$>[0]['store']>;
}

/** The last `max` bytes of a stream, for error messages (a node may print a lot on stderr). */
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly max = 64 << 10) {}
  push(c: Buffer): void {
    this.chunks.push(c);
    this.size += c.length;
    while (this.size - this.chunks[0]!.length >= this.max) this.size -= this.chunks.shift()!.length;
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

/** One unit of work: a generated POSIX sh script for one node (undefined = this host). */
export interface NodePlan {
  node: string | undefined;
  script: string;
}

export interface NodeRun {
  node: string | undefined;
  code: number;
  /** What the node said on stderr (its last 64 KiB, the watchdog's blank lines left out). */
  stderr: string;
  /** The whole answer, when no onStdout handler was given. */
  stdout: Buffer;
  /** Why the node failed as a whole, in one line; undefined when its script ran to the end. */
  failure?: string;
}

/** True when the address names this host, so the script runs without ssh. */
export function isLocalNode(node: string | undefined): boolean {
  if (node === undefined || node === '' || node === 'localhost' || node === os.hostname()) return true;
  for (const addrs of Object.values(os.networkInterfaces()))
    for (const a of addrs ?? []) if (a.address === node) return true;
  return false;
}

/** How long after the node's own deadline this side gives up on it (the node ends first). */
export const GRACE_SECONDS = 5;

/**
 * What a node runs on the script it reads on stdin, whatever the transport: its own deadline
 * first; 0 = none (a follower, which runs until Ctrl-C: `timeout 0` still gives the run its
 * process group, which the watchdog ends when the session is gone).
 */
export function onNode(deadline: number): string[] {
  if (!Number.isInteger(deadline) || deadline < 0) throw new Error(`bad deadline ${deadline}`);
  return ['timeout', '-k', String(GRACE_SECONDS), String(deadline), 'sh', '-s'];
}

/** The argv that runs a script on `node` with a deadline of `deadline` seconds (ssh or this host). Pure. */
export function nodeCommand(node: string | undefined, cfg: Config, isRoot: boolean, deadline: number): string[] {
  const onNodeArgv = onNode(deadline);
  if (isLocalNode(node)) return cfg.sudo && !isRoot ? ['sudo', '-n', ...onNodeArgv] : onNodeArgv;
  const host = checkNodeAddress(node!);
  const user = checkSshUser(cfg.ssh.user);
  // ServerAlive: a node that goes away mid-session fails within 3 intervals instead of hanging cron.
  const argv = ['ssh', '-o', 'BatchMode=yes', '-o', `ConnectTimeout=${cfg.ssh.connectTimeout}`,
    '-o', `ServerAliveInterval=${cfg.ssh.serverAliveInterval}`, '-o', 'ServerAliveCountMax=3'];
  if (cfg.ssh.controlMaster)
    argv.push('-o', 'ControlMaster=auto', '-o', 'ControlPath=~/.ssh/sneakpeek-%C', '-o', 'ControlPersist=60');
  for (const opt of cfg.ssh.options) argv.push('-o', checkSshOption(opt));
  if (cfg.ssh.port !== null) argv.push('-p', String(cfg.ssh.port));
  if (cfg.ssh.identityFile) argv.push('-i', cfg.ssh.identityFile);
  argv.push('-l', user, '--', host);
  // The remote command is fixed but for the deadline (a number); every value travels inside
  // the script on stdin.
  argv.push(`${cfg.sudo && user !== 'root' ? 'sudo -n ' : ''}${onNodeArgv.join(' ')}`);
  return argv;
}

/** True when `node` is reached through a pod (transport kubectl); no node is always this host. */
export const viaPod = (node: string | undefined, cfg: Config): node is string => cfg.transport === 'kubectl' && node !== undefined;

/** For --dry-run: how the script would reach `node` when that is not plain ssh/sh ('' or a comment line). */
export function transportNote(node: string | undefined, cfg: Config, deadline: number): string {
  if (!viaPod(node, cfg)) return '';
  return `# via: a pod on node ${node} (namespace ${cfg.kubectl.namespace}, image ${cfg.kubectl.image}), then kubectl exec -i POD -- nsenter -t 1 -m -u -i -n -p -- ${onNode(deadline).join(' ')}\n`;
}

/** Seconds this side waits for a node in all: the node's deadline, ssh's connect time, a grace (deadline 0: forever). */
export function operatorDeadline(node: string | undefined, cfg: Config, deadline: number): number {
  if (deadline === 0) return Infinity;
  return deadline + GRACE_SECONDS + (isLocalNode(node) ? 0 : cfg.ssh.connectTimeout);
}

const live = new Set<ProcessPromise>();
onInterrupt(() => {
  // At once (the process may be about to exit), then its whole tree the zx way.
  for (const p of live) {
    p.child?.kill('SIGTERM');
    void p.kill('SIGTERM').catch(() => {});
  }
});

/**
 * Start `argv` through zx with our settings; tracked so that Ctrl-C ends it. Once the run is
 * stopped (Ctrl-C, a reader gone) nothing new runs, but `cleanup` work (deleting the pods of a
 * kubectl transport run).
 */
async function start(argv: readonly string[], o: { input?: string | Buffer; env?: NodeJS.ProcessEnv; deadlineMs: number; cleanup?: boolean }): Promise<{ p: ProcessPromise }> {
  const $ = await zx();
  // `exec`: the process zx tracks is the command itself (ssh, timeout, kubectl), not a shell above it.
  const timeout = Number.isFinite(o.deadlineMs) ? { timeout: o.deadlineMs } : {};
  const p = $({ input: o.input ?? '', nothrow: true, ...timeout, store: discardStore(), ...(o.env ? { env: o.env } : {}) })`exec ${argv}`;
  // A node that hangs up before reading its script (ssh refused, sudo refused) is reported by its
  // exit code; the write that fails with EPIPE must not end this process.
  p.stdin?.on('error', () => {});
  // No input: an empty stdin that ends (zx leaves it open), so a command that reads it does not wait forever.
  if (!o.input) p.stdin?.end();
  live.add(p);
  void p.finally(() => live.delete(p)).catch(() => {});
  if (stopped() && !o.cleanup) void p.kill('SIGTERM').catch(() => {});
  // Wrapped: a ProcessPromise is a thenable, and an async function would wait for it.
  return { p };
}

export interface RunOptions {
  /** The node's deadline in seconds (config timeouts.<job>, or --timeout); 0 = none (--follow). */
  deadline: number;
  /** The environment of the ssh client or local sh (the tool's io.env); default this process's. */
  env?: NodeJS.ProcessEnv;
  /** Streamed stdout; return a promise to hold the node's output until the reader catches up. */
  onStdout?: (chunk: Buffer) => void | Promise<void>;
  /** A warning line about this node that is not its failure (a pod left behind); default: stderr. */
  warn?: (line: string) => void;
}

/** Run one node's script; resolves with how it ended, never rejects for a failed node. */
export async function runNodeScript(plan: NodePlan, cfg: Config, opts: RunOptions): Promise<NodeRun> {
  const where = plan.node ?? 'localhost';
  if (stopped()) return { node: plan.node, code: 130, stderr: '', stdout: Buffer.alloc(0), failure: `${where}: not run (${interruptedBy() ? 'interrupted' : 'stopped'})` };
  // Transport kubectl: the same script on the same stdin, through a pod (lib/io/kubectl-transport.ts).
  if (viaPod(plan.node, cfg)) return (await import('./kubectl-transport.ts')).runInPod({ node: plan.node, script: plan.script }, cfg, opts);
  const argv = nodeCommand(plan.node, cfg, process.getuid?.() === 0, opts.deadline);
  const limitMs = operatorDeadline(plan.node, cfg, opts.deadline) * 1000;
  const s = await streamProcess(argv, { input: plan.script, limitMs, onStdout: opts.onStdout, env: opts.env });
  const run: NodeRun = { node: plan.node, code: s.code, stderr: s.stderr, stdout: s.stdout };
  run.failure = failureOf(run, {
    where, broken: s.broken, deadline: opts.deadline, elapsedMs: s.elapsedMs, limitMs, cfg, interrupted: interruptedBy(), spawnError: s.spawnError,
    signal: s.signal,
  });
  return run;
}

export interface Streamed {
  code: number;
  /** The last 64 KiB of stderr, blank lines dropped. */
  stderr: string;
  /** All of stdout, when no onStdout handler was given. */
  stdout: Buffer;
  /** Why the handler could not take the output ('' when it could). */
  broken: string;
  elapsedMs: number;
  spawnError?: unknown;
  /** The signal that ended the process itself (ssh, sh, kubectl), when one did. */
  signal?: NodeJS.Signals;
}

export interface StreamOptions {
  input: string;
  /** Its deadline: past it, the process (and its tree) is killed. */
  limitMs: number;
  onStdout?: RunOptions['onStdout'];
  env?: NodeJS.ProcessEnv;
  /** Ends the process early once aborted (a watch that has seen what it waited for). */
  abort?: AbortSignal;
}

/**
 * Run `argv` with `input` on stdin, within `limitMs`, streaming stdout to `onStdout` with
 * backpressure (a returned promise pauses the process's output until it settles): what a node
 * session is, whatever carries it (ssh, `sh` here, kubectl exec).
 */
export async function streamProcess(argv: readonly string[], opt: StreamOptions): Promise<Streamed> {
  const { input, limitMs, onStdout, env } = opt;
  const t0 = Date.now();
  const { p } = await start(argv, { input, env, deadlineMs: limitMs });
  const abort = () => void p.kill('SIGTERM').catch(() => {});
  if (opt.abort?.aborted) abort();
  opt.abort?.addEventListener('abort', abort, { once: true });
  const out: Buffer[] = [];
  const err = new Tail();
  // A handler that throws (output we cannot read) ends this node, not the whole run.
  let broken = '';
  p.stdout.on('data', (c: Buffer) => {
    if (!onStdout) return void out.push(c);
    if (broken) return;
    try {
      const wait = onStdout(c);
      if (wait) {
        p.stdout.pause();
        void wait.then(() => p.stdout.resume());
      }
    } catch (e) {
      broken = `unreadable output from the node: ${oneLine(e)}`;
      void p.kill('SIGKILL').catch(() => {});
    }
  });
  p.stderr.on('data', (c: Buffer) => err.push(c));
  const o = await p;
  opt.abort?.removeEventListener('abort', abort);
  const code = o.exitCode ?? (o.signal ? 128 + (os.constants.signals[o.signal] ?? 0) : 1);
  const stderr = err.text().replace(/^\n+/gm, '');
  return { code, stderr, stdout: Buffer.concat(out), broken, elapsedMs: Date.now() - t0, spawnError: o.cause, signal: o.signal ?? undefined };
}

/** Why a node failed, in one line (undefined: its script ran to the end). Pure. */
export function failureOf(
  run: Pick<NodeRun, 'code' | 'stderr' | 'node'>,
  c: {
    where: string; broken?: string; deadline: number; elapsedMs: number; limitMs: number; cfg: Config; interrupted?: NodeJS.Signals; spawnError?: unknown;
    /** The signal that ended the ssh client (or local sh) itself, when one did. */
    signal?: NodeJS.Signals;
  },
): string | undefined {
  if (c.broken) return `${c.where}: ${c.broken}`;
  if (run.code === 0) return undefined;
  if (c.interrupted) return `${c.where}: interrupted (${c.interrupted})`;
  // 124: the node's own `timeout` ended the script; or this side's, a little later.
  if (run.code === 124 || c.elapsedMs >= c.limitMs - 50) return `${c.where}: timed out after ${c.deadline}s`;
  if (c.spawnError) return `${c.where}: ${oneLine(c.spawnError)}`;
  // Something on this machine killed the ssh client (or sh): say so, not "exited 137".
  if (c.signal) return `${c.where}: ${isLocalNode(run.node) ? 'sh' : 'ssh'} was killed (${c.signal})`;
  const said = lastLine(run.stderr);
  if (run.code === 127 && /timeout/.test(said)) return `${c.where}: 'timeout' not found on the node (coreutils or busybox is needed)`;
  if (said) return `${c.where}: ${said}`;
  if (run.code === 255 && !isLocalNode(run.node)) {
    const window = c.cfg.ssh.serverAliveInterval * 3;
    return c.elapsedMs >= window * 1000
      ? `${c.where}: the node stopped answering (ssh: no reply to keepalives for ${window}s) or the connection dropped`
      : `${c.where}: ssh failed (exit 255) without saying why`;
  }
  return `${c.where}: node script exited ${run.code}`;
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
  /** It ran past its deadline and was killed. */
  timedOut: boolean;
}

/** Run a local command (argv: each value quoted by shQuote) with a deadline in seconds. */
export async function runCommand(
  argv: readonly string[],
  o: { input?: string; env?: NodeJS.ProcessEnv; deadline: number; maxBytes?: number; /** runs even after Ctrl-C (undoing what the run made) */ cleanup?: boolean },
): Promise<CommandResult> {
  const t0 = Date.now();
  const { p } = await start(argv, { input: o.input, env: o.env, deadlineMs: o.deadline * 1000, cleanup: o.cleanup });
  const out: Buffer[] = [];
  const err = new Tail();
  let size = 0;
  let tooMuch = false;
  p.stdout.on('data', (c: Buffer) => {
    size += c.length;
    if (o.maxBytes !== undefined && size > o.maxBytes) {
      if (!tooMuch) void p.kill('SIGKILL').catch(() => {});
      tooMuch = true;
      return;
    }
    out.push(c);
  });
  p.stderr.on('data', (c: Buffer) => err.push(c));
  const r = await p;
  const code = r.exitCode ?? 1;
  if (tooMuch) return { code: 1, stdout: '', stderr: `${argv[0]}: answered more than ${o.maxBytes} bytes`, timedOut: false };
  return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: err.text(), timedOut: code !== 0 && Date.now() - t0 >= o.deadline * 1000 - 50 };
}

/** The last meaningful line of a failed command's stderr, for a one-line error. */
export function lastLine(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l && !/^Warning: Permanently added/.test(l));
  return lines[lines.length - 1] ?? '';
}
