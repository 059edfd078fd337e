// The exec half of the Kubernetes API double: `kubectl exec` runs the pod's command as a LOCAL
// process on this host (the "node"), stdin/stdout/stderr carried over the remotecommand
// stream protocol — WebSocket here (serveExecWebSocket), SPDY in kube-spdy.ts — and the exit
// code in the final Status, as the API server (stream translator) → kubelet → CRI
// (containerd) chain does for a real pod.
//
// - `nsenter -t 1 [-m -u -i -n -p …] -- CMD…` means "enter the node's namespaces": this
//   sandbox cannot enter PID 1's namespaces (its /proc/1/ns links are unreadable even for
//   root), and the double's "node" is this host anyway, so CMD runs directly. A missing CMD
//   then fails as the image's nsenter would (exit 127; busybox: "nsenter: can't execute 'CMD': …",
//   util-linux: "nsenter: failed to execute CMD: …").
// - The process runs in its own process group, with the container's environment (image
//   PATH, HOSTNAME, the container's `env` values), cwd `/`, not the test's environment.
// - Backpressure both ways: output is read from the process only as fast as the client
//   takes it; stdin frames are read from the socket only as fast as the process takes them.
//   So, as with the real API server, a process that leaves a large stdin unread for a minute
//   stalls the WebSocket reader, pings go unanswered, and kubectl gives up after ~61 s
//   ("error: error reading from error stream: next reader: … i/o timeout", exit 1).
// - Client gone mid-exec (kubectl killed, connection dropped): the process is NOT killed, as
//   with containerd's CRI streaming server (the exec keeps running until it exits; its exit
//   is only logged). Its stdin gets EOF; its output is no longer read, so once the pipes
//   fill it blocks in write — containerd's shim keeps the output FIFO open and stops
//   draining it. Deleting the pod (or its deadline) kills it, as the kubelet kills the
//   pod's cgroup: with hostPID the shim SIGKILLs everything in the container's cgroup when
//   its main process dies, and `nsenter` does not leave that cgroup. Here "the cgroup" is the
//   process group and the descendants of the exec'd process; one that calls setsid and is
//   orphaned escapes it (a real cgroup would not let it).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { WsConnection, offeredProtocols } from './kube-websocket.ts';

type Obj = Record<string, unknown>;

/** remotecommand channels (k8s.io/apimachinery/pkg/util/remotecommand). */
export const CH = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4, close: 255 } as const;

/** Subprotocols the WebSocket side serves, best first. kubectl 1.32 offers only v5. */
export const WS_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'];

export interface ExecRequest {
  namespace: string;
  pod: string;
  container: string;
  command: string[];
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** What the double saw and did for one exec; kept in KubeServer.execs. */
export interface ExecRecord extends ExecRequest {
  transport: 'websocket' | 'spdy';
  protocol: string;
  /** The argv run on this host (nsenter prefix removed). */
  argv: string[];
  pid?: number;
  started: number;
  ended?: number;
  exitCode?: number;
  signal?: string;
  /** The Status sent on the error channel (undefined if the client was gone). */
  status?: Obj;
  stdinBytes: number;
  stdoutBytes: number;
  stderrBytes: number;
  /** The client closed stdin (v5 CLOSE signal) before the end. */
  stdinClosed: boolean;
  /** The connection dropped before the process ended. */
  clientGone: boolean;
  /** Killed by pod deletion or the pod's deadline. */
  killed: boolean;
  /** WebSocket pings the client sent (kubectl: one every 5 s), each answered with a pong. */
  pings: number;
}

export function parseExecQuery(q: URLSearchParams, namespace: string, pod: string): ExecRequest {
  const flag = (k: string) => ['true', '1'].includes(q.get(k) ?? '');
  return {
    namespace,
    pod,
    container: q.get('container') ?? '',
    command: q.getAll('command'),
    stdin: flag('stdin'),
    stdout: flag('stdout'),
    stderr: flag('stderr'),
    tty: flag('tty'),
  };
}

const NSENTER_VALUE = new Set(['-t', '--target', '-S', '--setuid', '-G', '--setgid']);

/**
 * The argv to run on the node for a pod command: `nsenter -t 1 …opts… [--] CMD…` → CMD…
 * (nsenter without a command runs a shell). Anything else, or nsenter aimed at another
 * target, is returned unchanged.
 */
export function nodeArgv(command: string[]): { argv: string[]; nsenter: boolean } {
  if (!command.length || path.basename(command[0]!) !== 'nsenter') return { argv: command, nsenter: false };
  let target: string | undefined;
  let i = 1;
  for (; i < command.length; i++) {
    const a = command[i]!;
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-')) break;
    if (NSENTER_VALUE.has(a)) {
      if (a === '-t' || a === '--target') target = command[i + 1];
      i++;
    } else if (a.startsWith('--target=')) target = a.slice('--target='.length);
    else if (/^-[a-zA-Z]*t/.test(a) && !a.startsWith('--')) {
      // combined short options: -t1, -mt 1, -muinpt1
      const rest = a.slice(a.indexOf('t') + 1);
      if (rest) target = rest;
      else target = command[++i];
    }
  }
  if (target !== '1') return { argv: command, nsenter: false };
  const argv = command.slice(i);
  return { argv: argv.length ? argv : ['/bin/sh'], nsenter: true };
}

// ---- Status objects on the error channel, as the API server's stream translator writes them
// (json.Marshal of metav1.Status: no kind/apiVersion).

export function statusSuccess(): Obj {
  return { metadata: {}, status: 'Success' };
}

export function statusExit(code: number): Obj {
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: command terminated with exit code ${code}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  };
}

/** The kubelet's Status for a non-zero exit (containerd's error text; kubectl reads only the cause). */
export function kubeletStatusExit(code: number, argv: string[]): Obj {
  return { ...statusExit(code), message: `command terminated with non-zero exit code: error executing command [${argv.join(' ')}], exit code ${code}` };
}

/**
 * What the API server's stream translator (WebSocket ↔ SPDY to the kubelet) sends for the
 * kubelet's Status: the exit code re-worded, any other failure wrapped once more as an
 * internal error (so kubectl prints "Internal error occurred: Internal error occurred: …").
 */
export function translateStatus(kubelet: Obj): Obj {
  if (kubelet.status === 'Success') return statusSuccess();
  if (kubelet.reason === 'NonZeroExitCode') {
    const causes = ((kubelet.details as Obj | undefined)?.causes ?? []) as Obj[];
    return statusExit(Number(causes.find((c) => c.reason === 'ExitCode')?.message));
  }
  return statusInternal(String(kubelet.message));
}

export function statusInternal(message: string): Obj {
  return {
    metadata: {},
    status: 'Failure',
    message: `Internal error occurred: ${message}`,
    reason: 'InternalError',
    details: { causes: [{ message }] },
    code: 500,
  };
}

// ---- processes

interface ProcInfo {
  pid: number;
  ppid: number;
  pgid: number;
  state: string;
}

function procTable(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'latin1');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.push({ pid: Number(d), state: f[0]!, ppid: Number(f[1]), pgid: Number(f[2]) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * Live (non-zombie) pids that are `roots`, their descendants, or in their process groups.
 * groupOnly (the roots are gone, reaped): only their groups' members. While such a group has
 * members the kernel keeps its id from any new process; once it is empty the id can be reused
 * (pid_max is 32768 here, and the test suite wraps it in minutes) — by a process that is then
 * the LEADER of a new group of the same id (`timeout`, an sshd session: another test's node
 * script). A root whose id a live process holds again is that case: none of its group is ours.
 */
export function processTree(roots: number[], how: { groupOnly?: boolean } = {}): number[] {
  if (!roots.length) return [];
  const table = procTable();
  if (how.groupOnly) {
    const reused = new Set(table.filter((p) => roots.includes(p.pid)).map((p) => p.pid));
    return table.filter((p) => roots.includes(p.pgid) && !reused.has(p.pgid) && p.state !== 'Z').map((p) => p.pid).sort((a, b) => a - b);
  }
  const children = new Map<number, number[]>();
  for (const p of table) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p.pid]);
  const groups = new Set(roots);
  const found = new Set<number>();
  const stack = [...roots];
  while (stack.length) {
    const pid = stack.pop()!;
    if (found.has(pid)) continue;
    found.add(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  for (const p of table) if (groups.has(p.pgid)) found.add(p.pid);
  const live = new Set(table.filter((p) => p.state !== 'Z').map((p) => p.pid));
  return [...found].filter((pid) => live.has(pid)).sort((a, b) => a - b);
}

const exitCodeOf = (code: number | null, signal: NodeJS.Signals | null): number =>
  code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0);

/** Where the process's output and final status go (a WebSocket or SPDY stream). */
export interface ExecSink {
  /** A chunk of stdout/stderr; false = the connection's buffer is full, call resumeOutput() on drain. */
  write(channel: 1 | 2, data: Buffer): boolean;
  /** The last message: the kubelet's Status on the error channel, then close. Returns the Status sent. */
  finish(status: Obj): Obj;
}

export interface ExecOptions {
  /** The container's environment for the process (PATH, HOSTNAME, spec env…). */
  env: Record<string, string>;
  /** The container's image (its nsenter's wording of a failed exec: busybox or util-linux). */
  image?: string;
  onExit?: (rec: ExecRecord) => void;
}

/** One exec'd process on the "node". */
export class ExecProcess {
  child: ChildProcess | undefined;
  private gone = false;
  private done = false;
  private stdinWaiting = false;
  private readonly exited: Promise<void>;
  private markExited!: () => void;

  constructor(
    readonly record: ExecRecord,
    private readonly sink: ExecSink,
    private readonly opts: ExecOptions,
    private readonly nsenter: boolean,
  ) {
    this.exited = new Promise((r) => (this.markExited = r));
  }

  start(): void {
    const rec = this.record;
    const child = spawn(rec.argv[0]!, rec.argv.slice(1), {
      cwd: '/',
      env: this.opts.env,
      detached: true, // own process group: the pod's "cgroup" for kill
      stdio: [rec.stdin ? 'pipe' : 'ignore', rec.stdout ? 'pipe' : 'ignore', rec.stderr || rec.tty ? 'pipe' : 'ignore'],
    });
    this.child = child;
    rec.pid = child.pid;
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (child.pid !== undefined) return; // errors after spawn: the 'exit' path reports
      rec.ended = Date.now();
      this.markExited();
      if (this.nsenter && rec.stderr) {
        // what nsenter itself prints when it cannot exec the program, and its exit code
        const code = err.code === 'ENOENT' ? 127 : 126;
        const why = err.code === 'ENOENT' ? 'No such file or directory' : 'Permission denied';
        // the container image's nsenter says it: busybox's words, or util-linux's
        const line = /(^|\/)busybox([:@]|$)/.test(this.opts.image ?? '') ? `nsenter: can't execute '${rec.argv[0]}': ${why}` : `nsenter: failed to execute ${rec.argv[0]}: ${why}`;
        this.sink.write(CH.stderr, Buffer.from(`${line}\n`));
        this.end(kubeletStatusExit(code, rec.command), code);
      } else {
        const why = err.code === 'ENOENT' ? `exec: "${rec.argv[0]}": executable file not found in $PATH` : `exec: "${rec.argv[0]}": permission denied`;
        this.end(
          statusInternal(
            `error executing command in container: failed to exec in container: failed to start exec "${randomBytes(32).toString('hex')}": OCI runtime exec failed: exec failed: unable to start container process: ${why}: unknown`,
          ),
          undefined,
        );
      }
    });
    const out = (ch: 1 | 2) => (chunk: Buffer) => {
      if (ch === CH.stdout) rec.stdoutBytes += chunk.length;
      else rec.stderrBytes += chunk.length;
      // with a tty, stderr shares the terminal: it goes out on stdout
      if (!this.sink.write(rec.tty ? CH.stdout : ch, chunk)) this.pauseOutput();
    };
    child.stdout?.on('data', out(CH.stdout));
    child.stderr?.on('data', out(CH.stderr));
    child.stdin?.on('error', () => {}); // EPIPE when the process exits without reading all stdin
    child.on('exit', (code, signal) => {
      rec.exitCode = exitCodeOf(code, signal);
      rec.signal = signal ?? undefined;
      this.markExited();
      if (this.gone) {
        // nobody to tell: release the pipes and end (as containerd only logs the exit)
        child.stdout?.destroy();
        child.stderr?.destroy();
        this.finishRecord();
      }
    });
    child.on('close', (code, signal) => {
      if (this.gone) return;
      const rc = exitCodeOf(code, signal);
      this.end(rc === 0 ? statusSuccess() : kubeletStatusExit(rc, rec.command), rc);
    });
  }

  /** Data from the client for the process's stdin; false = wait for onStdinDrain. */
  writeStdin(data: Buffer): boolean {
    const stdin = this.child?.stdin;
    this.record.stdinBytes += data.length;
    if (!stdin || stdin.destroyed || stdin.writableEnded) return true;
    return stdin.write(data);
  }

  /** Call fn once the process has taken what stdin holds (or stdin is gone); one waiter at a time. */
  onStdinDrain(fn: () => void): void {
    const stdin = this.child?.stdin;
    if (!stdin || stdin.destroyed) return fn();
    if (this.stdinWaiting) return;
    this.stdinWaiting = true;
    const done = () => {
      stdin.off('drain', done);
      stdin.off('close', done);
      this.stdinWaiting = false;
      fn();
    };
    stdin.on('drain', done);
    stdin.on('close', done);
  }

  endStdin(): void {
    this.record.stdinClosed = true;
    this.child?.stdin?.end();
  }

  pauseOutput(): void {
    this.child?.stdout?.pause();
    this.child?.stderr?.pause();
  }

  resumeOutput(): void {
    if (this.gone) return;
    this.child?.stdout?.resume();
    this.child?.stderr?.resume();
  }

  /** The client went away: stdin EOF, output no longer read; the process runs on. */
  clientGone(): void {
    if (this.done || this.gone) return;
    this.gone = true;
    this.record.clientGone = true;
    this.child?.stdin?.end();
    this.pauseOutput();
    if (this.record.exitCode !== undefined) {
      this.child?.stdout?.destroy();
      this.child?.stderr?.destroy();
      this.finishRecord();
    }
  }

  get alive(): boolean {
    return !!this.child?.pid && this.record.exitCode === undefined;
  }

  /**
   * Pids of the process and everything it started: its descendants while it lives; after it
   * is reaped only its process group (whose id the kernel does not reuse while it has members),
   * and nothing once that id belongs to a new process (see processTree).
   */
  pids(): number[] {
    const pid = this.child?.pid;
    if (!pid) return [];
    return this.alive ? processTree([pid]) : processTree([pid], { groupOnly: true });
  }

  /** SIGKILL the process, its group and its descendants (pod deleted / deadline). */
  async kill(): Promise<void> {
    const pid = this.child?.pid;
    if (!pid) return;
    this.record.killed = this.record.killed || this.alive;
    for (let round = 0; round < 20; round++) {
      const pids = this.pids();
      if (!pids.length) break; // nothing of ours left (and never a group whose id was reused)
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // group already empty
      }
      for (const p of pids) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // gone
        }
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, 2000))]);
  }

  private end(status: Obj, exitCode: number | undefined): void {
    if (this.done) return;
    if (exitCode !== undefined) this.record.exitCode = exitCode;
    this.record.status = this.sink.finish(status);
    this.finishRecord();
  }

  private finishRecord(): void {
    if (this.done) return;
    this.done = true;
    this.record.ended = Date.now();
    this.opts.onExit?.(this.record);
  }
}

export function newRecord(req: ExecRequest, transport: ExecRecord['transport'], protocol: string): ExecRecord {
  return {
    ...req,
    transport,
    protocol,
    argv: nodeArgv(req.command).argv,
    started: Date.now(),
    stdinBytes: 0,
    stdoutBytes: 0,
    stderrBytes: 0,
    stdinClosed: false,
    clientGone: false,
    killed: false,
    pings: 0,
  };
}

/**
 * Serve an exec over WebSocket (the stream translator's side of v5.channel.k8s.io; v4 is
 * the same without the CLOSE signal). Each message is one channel byte + data. Call only
 * after the pod/container checks passed; `start` gets the process before it runs.
 */
export function serveExecWebSocket(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  exec: ExecRequest,
  protocols: string[],
  opts: ExecOptions & { onProcess: (p: ExecProcess) => void; precheck?: () => Obj | undefined; hang?: boolean },
): boolean {
  const chosen = offeredProtocols(req).find((p) => protocols.includes(p));
  if (!chosen) return false;
  const rec = newRecord(exec, 'websocket', chosen);
  const v5 = chosen.startsWith('v5.');
  let proc: ExecProcess | undefined;
  const CHANNEL = [0, 1, 2, 3, 4].map((ch) => Buffer.from([ch]));
  const conn = WsConnection.accept(req, socket, head, chosen, {
    onMessage(_op, data) {
      if (!data.length || !proc) return;
      const ch = data[0]!;
      if (v5 && ch === CH.close) {
        if (data[1] === CH.stdin) proc.endStdin();
        return;
      }
      if (ch === CH.stdin && exec.stdin) {
        if (!proc.writeStdin(data.subarray(1))) {
          conn.pause();
          proc.onStdinDrain(() => conn.resume());
        }
      }
      // CH.resize: terminal sizes (JSON) — no tty here, nothing to resize
    },
    onPing() {
      rec.pings++;
    },
    onGone() {
      proc?.clientGone();
    },
  });
  // the translator's first message: an empty one on the lowest writable channel
  conn.send(Buffer.from([exec.stdout ? CH.stdout : exec.stderr ? CH.stderr : CH.error]));
  const sendStatus = (status: Obj) => {
    conn.send(CHANNEL[CH.error]!, Buffer.from(JSON.stringify(status)));
    conn.close();
    return status;
  };
  const sink: ExecSink = {
    write: (ch, data) => conn.send(CHANNEL[ch]!, data),
    finish: (kubelet) => sendStatus(translateStatus(kubelet)),
  };
  socket.on('drain', () => proc?.resumeOutput());
  const refused = opts.precheck?.();
  if (refused) {
    rec.status = sendStatus(refused);
    rec.ended = Date.now();
    opts.onExit?.(rec);
    return true;
  }
  if (opts.hang) return true; // a wedged runtime: the stream stays open (pings answered), nothing runs
  proc = new ExecProcess(rec, sink, opts, nodeArgv(exec.command).nsenter);
  opts.onProcess(proc);
  proc.start();
  return true;
}
