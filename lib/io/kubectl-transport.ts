// Transport kubectl: a node's script reaches it through the Kubernetes API instead of ssh, for
// clusters where nobody can ssh to a node (EKS, GKE, AKS, hardened ones). For each node, per
// command, ONE short-lived privileged pod (lib/node-pod.ts says what it is):
//   1. kubectl create -f -                 the pod, pinned to the node (spec.nodeName)
//   2. kubectl get pods --field-selector metadata.name=NAME -w -o json
//                                          watched until Running; a pod that fails to start
//                                          (image pull, admission, no kubelet) fails the node
//                                          with the reason from its status, within
//                                          kubectl.startTimeout (a silent pod: its node is asked)
//   3. kubectl exec -i NAME -- nsenter -t 1 -m -u -i -n -p -- timeout -k 5 N sh -s
//                                          the node script on stdin, its records streamed
//                                          back exactly as over ssh (same backpressure)
//   4. kubectl delete pod NAME --wait=false   on EVERY way out: success, failure, deadline,
//                                          Ctrl-C (cleanup work still runs after it), a
//                                          reader gone (deleted before the early exit), a pod
//                                          that never ran (then --grace-period=0 --force: no
//                                          kubelet will confirm it).
// Deleting the pod is what ends the script on the node when this side gives up: a killed
// `kubectl exec` does not end the process it started (the runtime keeps it, blocked on an
// output nobody reads, so the script's watchdog cannot see the session go). The node's own
// `timeout` and the pod's activeDeadlineSeconds bound it even if sneakpeek is SIGKILLed.
import { randomBytes } from 'node:crypto';
import type { Config } from '../config.ts';
import { OpError, oneLine } from '../errors.ts';
import { kubectlArgv, managedPods, nodeProblem, podManifest, podName, podProgress, WatchSplitter } from '../node-pod.ts';
import type { IO } from './entry.ts';
import { interruptedBy, onLeave, stopped } from './interrupt.ts';
import { failureOf, GRACE_SECONDS, lastLine, onNode, runCommand, streamProcess, type CommandResult, type NodeRun, type RunOptions } from './runner.ts';

// One run id per sneakpeek process: its pods are sneakpeek-<run>-1, -2, … and carry
// sneakpeek.io/run=<run>, so that `kubectl delete pod -l sneakpeek.io/run=<run>` takes exactly them.
const ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';
const run = [...randomBytes(8)].map((b) => ALPHABET[b % ALPHABET.length]).join('');
let made = 0;

/** A watch is started again no sooner than this after the last one started. */
const WATCH_RESTART_MS = 1000;

/** A pod nobody reports on for this long: is its node there, and Ready? */
const SILENT_MS = 1500;

/** Why this node stops here, once the run is being ended (Ctrl-C, SIGTERM, a reader gone). */
const halted = (): string | undefined => (interruptedBy() ? `interrupted (${interruptedBy()})` : stopped() ? 'stopped (the output is no longer read)' : undefined);

// The pods this process has made and not yet deleted. When it has to leave early (stdout's
// reader gone: stopAll + exit), they are deleted on the way out; each pod is deleted once,
// whoever asks first (its own run's last step, or the way out), one kubectl per group.
interface LivePod {
  cfg: Config;
  /** A kubelet has run it: a plain delete; otherwise forced (no kubelet would confirm). */
  running: boolean;
  env?: NodeJS.ProcessEnv;
  deleted?: Promise<CommandResult>;
}
const livePods = new Map<string, LivePod>();

/**
 * Seconds a pod's delete may take: timeouts.kubectl, but at most LEAVING_DELETE_S once the run
 * is being ended (Ctrl-C, SIGTERM, a reader gone): an API server that hangs must not hold the
 * operator's terminal for a minute; the warning then names the pod (--cleanup removes it).
 */
const LEAVING_DELETE_S = 10;
const deleteDeadline = (cfg: Config): number => (stopped() ? Math.min(cfg.timeouts.kubectl, LEAVING_DELETE_S) : cfg.timeouts.kubectl);

function deletePods(names: readonly string[]): Promise<CommandResult[]> {
  const groups = new Map<string, { pods: LivePod[]; names: string[] }>();
  for (const name of names) {
    const p = livePods.get(name);
    if (!p || p.deleted) continue;
    const key = `${p.cfg.kubectl.namespace}\n${p.running}`;
    if (!groups.has(key)) groups.set(key, { pods: [], names: [] });
    groups.get(key)!.pods.push(p);
    groups.get(key)!.names.push(name);
  }
  for (const g of groups.values()) {
    const { cfg, running, env } = g.pods[0]!;
    const del = runCommand(kubectlArgv.delete(cfg, g.names, !running), { env, deadline: deleteDeadline(cfg), cleanup: true });
    for (const p of g.pods) p.deleted = del;
  }
  const none: CommandResult = { code: 0, stdout: '', stderr: '', timedOut: false };
  return Promise.all(names.map((n) => livePods.get(n)?.deleted ?? Promise.resolve(none)));
}
onLeave(async () => void (await deletePods([...livePods.keys()])));

/** kubectl's own failure in one line: not found, timed out, or its last stderr line. */
function kubectlFailure(what: string, r: CommandResult, cfg: Config, deadline: number): string {
  if (r.code === 127) return `${cfg.paths.kubectl}: not found (set paths.kubectl in the config)`;
  if (r.timedOut) return `${what}: timed out after ${deadline}s`;
  return `${what}: ${lastLine(r.stderr) || `kubectl exited ${r.code}`}`;
}

/**
 * A failed `kubectl create` that certainly made no pod: the API server refused it, was never
 * reached, or kubectl stopped before sending it (its schema check could not fetch the OpenAPI).
 */
const NOTHING_MADE = /^Error from server \(|^The connection to the server \S+ was refused|^Unable to connect to the server: dial tcp |^error: error validating "STDIN"/;

/** kubectl exec's own words about the remote exit code: not the node's. */
const EXIT_NOTE = /^command terminated with exit code \d+\n?$/gm;

/** Run one node's script in a pod on that node; resolves with how it ended, never rejects. */
export async function runInPod(plan: { node: string; script: string }, cfg: Config, opts: RunOptions): Promise<NodeRun> {
  const where = plan.node;
  const ns = cfg.kubectl.namespace;
  const name = podName(run, ++made);
  const pod = `pod ${ns}/${name}`;
  const t0 = Date.now();
  // In all, as with ssh: the time to start (like ssh's connect), the node's deadline, a grace.
  const lifetime = cfg.kubectl.startTimeout + opts.deadline + 2 * GRACE_SECONDS;
  const fail = (failure: string, code = 1): NodeRun => ({ node: plan.node, code, stderr: '', stdout: Buffer.alloc(0), failure: `${where}: ${failure}` });
  const env = opts.env;
  const live: LivePod = { cfg, running: false, env };
  livePods.set(name, live);
  try {
    // 1. create
    const create = await runCommand(kubectlArgv.create(cfg), {
      input: JSON.stringify(podManifest({ name, run, node: plan.node, lifetime }, cfg)),
      env,
      deadline: cfg.timeouts.kubectl,
    });
    if (halted()) return fail(halted()!, 130);
    if (create.code !== 0) {
      // No pod to delete when kubectl never ran or the server said no or was not there (a
      // delete would only fail too, and warn about a pod that never was); a create that timed
      // out or broke off mid-request may have made it: that one is deleted.
      if (!create.timedOut && (create.code === 126 || create.code === 127 || NOTHING_MADE.test(lastLine(create.stderr)))) livePods.delete(name);
      return fail(kubectlFailure(`cannot create ${pod}`, create, cfg, cfg.timeouts.kubectl));
    }

    // 2. until Running, or the reason it will not be
    const started = await untilRunning(cfg, env, plan.node, name, t0 + cfg.kubectl.startTimeout * 1000);
    if (started !== true) return fail(started, halted() ? 130 : 1);
    live.running = true;

    // 3. the script, exactly as ssh would carry it
    const limitMs = (opts.deadline + 2 * GRACE_SECONDS) * 1000;
    const s = await streamProcess(kubectlArgv.exec(cfg, name, onNode(opts.deadline)), { input: plan.script, limitMs, onStdout: opts.onStdout, env });
    const stderr = s.stderr.replace(EXIT_NOTE, '');
    const result: NodeRun = { node: plan.node, code: s.code, stderr, stdout: s.stdout };
    const ctx = { where, broken: s.broken, deadline: opts.deadline, elapsedMs: s.elapsedMs, limitMs, cfg, interrupted: interruptedBy(), spawnError: s.spawnError };
    result.failure = s.code === 137 && !lastLine(stderr) && !ctx.interrupted && !s.broken
      ? `${where}: the script was killed (exit 137), as when its ${pod} is deleted or passes its deadline`
      : failureOf(result, ctx);
    return result;
  } finally {
    // 4. always: the pod goes (forced when no kubelet ever ran it: nobody would confirm).
    const [del] = livePods.has(name) ? await deletePods([name]) : [];
    livePods.delete(name);
    if (del && del.code !== 0) {
      (opts.warn ?? ((l: string) => void process.stderr.write(`${l}\n`)))(
        `sneakpeek: warning: ${where}: ${kubectlFailure(`${pod} not deleted`, del, cfg, deleteDeadline(cfg))} (sneakpeek --cleanup removes it)`,
      );
    }
  }
}

/**
 * Watch the pod (one `kubectl get -w`) until it runs (true), or say why it will not, by `end`
 * (epoch ms). A pod nobody has reported on after SILENT_MS makes us ask about its node.
 */
async function untilRunning(cfg: Config, env: NodeJS.ProcessEnv | undefined, node: string, name: string, end: number): Promise<true | string> {
  const pod = `pod ${cfg.kubectl.namespace}/${name}`;
  let verdict: true | string | undefined;
  let last = 'no status yet';
  let silent = true;
  const done = new AbortController();
  const decide = (v: true | string) => {
    verdict ??= v;
    done.abort();
  };
  const split = new WatchSplitter();
  const onStdout = (c: Buffer) => {
    if (verdict !== undefined) return;
    try {
      split.push(c.toString('utf8'), (doc) => {
        const p = podProgress(doc);
        if (p.state === 'running') return decide(true);
        if (p.state === 'failed') return decide(`${pod}: ${p.why}`);
        last = p.why;
        silent &&= p.silent;
      });
    } catch (e) {
      // kubectl's output, not the node's: say whose
      decide(`cannot read ${pod}: kubectl did not answer JSON (${oneLine(e)})`);
    }
  };
  // Nobody on the node has said a word: is there such a node, and is it Ready?
  const nodeCheck = setTimeout(async () => {
    if (!silent || verdict !== undefined) return;
    const n = await runCommand(kubectlArgv.node(cfg, node), { env, deadline: Math.max(1, Math.min(cfg.timeouts.kubectl, Math.ceil((end - Date.now()) / 1000))) });
    if (!silent || verdict !== undefined) return;
    if (n.code !== 0 && /NotFound/.test(n.stderr)) return decide(`no such node (${lastLine(n.stderr)})`);
    let problem: string | undefined;
    try {
      problem = n.code === 0 ? nodeProblem(JSON.parse(n.stdout)) : undefined;
    } catch {
      problem = undefined;
    }
    // No answer about the node (e.g. no RBAC to read nodes): keep waiting for the pod.
    if (problem) decide(`${problem}; ${pod} stays Pending`);
  }, SILENT_MS);
  try {
    // A watch the server ends early (its own timeout) is started again while there is time.
    while (verdict === undefined && !halted() && Date.now() < end) {
      const began = Date.now();
      const w = await streamProcess(kubectlArgv.watch(cfg, name), { input: '', limitMs: end - Date.now(), onStdout, env, abort: done.signal });
      if (verdict !== undefined || halted()) break;
      if (w.broken) return `cannot read ${pod}: ${w.broken}`;
      if (w.code === 127) return `${cfg.paths.kubectl}: not found (set paths.kubectl in the config)`;
      if (w.code !== 0 && Date.now() < end - 50) return `cannot watch ${pod}: ${lastLine(w.stderr) || `kubectl exited ${w.code}`}`;
      // A watch that ended at once (a proxy that cuts streams) is started again once a second, not in a busy loop.
      const pause = Math.min(began + WATCH_RESTART_MS, end) - Date.now();
      if (pause > 0) await new Promise((r) => setTimeout(r, pause));
    }
  } finally {
    clearTimeout(nodeCheck);
  }
  if (verdict !== undefined) return verdict;
  if (halted()) return halted()!;
  return `${pod} not Running after ${cfg.kubectl.startTimeout}s (kubectl.startTimeout): ${last}`;
}

export interface CleanupArgs {
  /** Only this namespace; null = every namespace; undefined = config kubectl.namespace. */
  namespace: string | null | undefined;
  dryRun: boolean;
}

/**
 * `sneakpeek --cleanup`: every pod sneakpeek made (both labels and its name: node-pod.ts managedPods)
 * and left behind — a run killed with SIGKILL, a second Ctrl-C, an API server that went away
 * before the delete — is listed and deleted. A pod no kubelet ever reported on, or already
 * Terminating on a node that never confirms, is deleted with --grace-period=0 --force. It ends
 * the pods of runs still in progress too.
 */
export async function cleanupPods(cfg: Config, a: CleanupArgs, io: IO): Promise<number> {
  const env = { ...process.env, ...io.env };
  const namespace = a.namespace === undefined ? cfg.kubectl.namespace : a.namespace;
  const list = await runCommand(kubectlArgv.leftovers(cfg, namespace), { env, deadline: cfg.timeouts.kubectl });
  if (list.code !== 0) throw new OpError(kubectlFailure('kubectl get pods', list, cfg, cfg.timeouts.kubectl));
  let rows;
  try {
    rows = managedPods(JSON.parse(list.stdout));
  } catch {
    throw new OpError('kubectl get pods: kubectl did not answer JSON');
  }
  let failed = 0;
  // One kubectl per namespace and kind of delete.
  const groups = new Map<string, typeof rows>();
  for (const r of rows) {
    const key = `${r.namespace}\n${r.terminating || r.orphaned ? 'force' : 'grace'}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  for (const [key, pods] of groups) {
    const [ns, how] = key.split('\n') as [string, string];
    const force = how === 'force';
    if (!a.dryRun) {
      const del = await runCommand(kubectlArgv.delete(cfg, pods.map((p) => p.name), force, ns), { env, deadline: cfg.timeouts.kubectl, cleanup: true });
      if (del!.code !== 0) {
        failed += pods.length;
        io.stderr.write(`sneakpeek: ${kubectlFailure(`cannot delete ${pods.length} pod(s) in ${ns}`, del, cfg, cfg.timeouts.kubectl)}\n`);
        continue;
      }
    }
    for (const p of pods)
      io.stdout.write(`${p.namespace}/${p.name} ${p.node || '-'} ${p.phase}${p.terminating ? ',Terminating' : ''} ${a.dryRun ? 'would be deleted' : force ? 'force-deleted' : 'deleted'}\n`);
  }
  io.stderr.write(`${rows.length - failed} of ${rows.length} pod(s) ${a.dryRun ? 'to delete' : 'deleted'}${namespace === null ? ' (all namespaces)' : ` (namespace ${namespace})`}\n`);
  return failed ? 1 : 0;
}
