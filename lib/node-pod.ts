// Transport kubectl, the pure half: the pod that carries one node script, the kubectl command
// lines that create, watch, enter and delete it, and what a pod's (or node's) status says.
// lib/io/kubectl-transport.ts runs them.
//
// The pod, one per node per command (kubectl-node-shell's way, not `kubectl debug node`):
//   pinned with spec.nodeName (no scheduler; every taint tolerated), hostPID + hostNetwork +
//   hostIPC, one privileged container `sleep`ing in the configured image, restartPolicy Never,
//   activeDeadlineSeconds (the kubelet ends it even if sneakpeek is killed), no service account
//   token, labelled app.kubernetes.io/managed-by=sneakpeek and sneakpeek.io/run=<run id>.
// The script then runs with
//   kubectl exec -i POD -c sneakpeek -- nsenter -t 1 -m -u -i -n -p -- timeout -k 5 N sh -s
// i.e. in the node's own mount, UTS, IPC, network and PID namespaces, as root, with the node's
// own sh, timeout, docker, bpftool, systemctl — the very command ssh runs, on the same stdin.
import type { Config } from './config.ts';
import { checkNodeName } from './targets.ts';

export const MANAGED_BY = 'app.kubernetes.io/managed-by';
export const RUN_LABEL = 'sneakpeek.io/run';
/**
 * The selector every pod sneakpeek makes matches (`kubectl delete pod -l …` finds leftovers):
 * both labels, not managed-by alone, which another tool may set to the same word.
 */
export const MANAGED_SELECTOR = `${MANAGED_BY}=sneakpeek,${RUN_LABEL}`;
export const CONTAINER = 'sneakpeek';

/** Enter the node: every namespace of its PID 1 but the cgroup one (the pod's cgroup is what deleting the pod kills). */
export const NSENTER = ['nsenter', '-t', '1', '-m', '-u', '-i', '-n', '-p', '--'] as const;

const RUN_RE = /^[a-z0-9]{4,16}$/;

/** The pod's name: sneakpeek-<run>-<n>, n counting the run's pods from 1. */
export function podName(run: string, n: number): string {
  if (!RUN_RE.test(run) || !Number.isInteger(n) || n < 1) throw new Error(`bad pod name parts ${run} ${n}`);
  return `sneakpeek-${run}-${n}`;
}

export interface PodPlan {
  name: string;
  run: string;
  node: string;
  /** Seconds the pod may live in all (activeDeadlineSeconds; its `sleep` lasts as long). */
  lifetime: number;
}

/** The pod object for `kubectl create -f -`. */
export function podManifest(p: PodPlan, cfg: Config): Record<string, unknown> {
  if (!Number.isInteger(p.lifetime) || p.lifetime < 1) throw new Error(`bad pod lifetime ${p.lifetime}`);
  const k = cfg.kubectl;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: p.name,
      namespace: k.namespace,
      labels: { [MANAGED_BY]: 'sneakpeek', [RUN_LABEL]: p.run },
    },
    spec: {
      nodeName: checkNodeName(p.node),
      hostPID: true,
      hostNetwork: true,
      hostIPC: true,
      restartPolicy: 'Never',
      activeDeadlineSeconds: p.lifetime,
      terminationGracePeriodSeconds: 1,
      tolerations: [{ operator: 'Exists' }],
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      ...(k.pullSecret ? { imagePullSecrets: [{ name: k.pullSecret }] } : {}),
      containers: [
        {
          name: CONTAINER,
          image: k.image,
          imagePullPolicy: 'IfNotPresent',
          // Keeps the pod alive for the execs; ends by itself at the pod's deadline.
          command: ['sleep', String(p.lifetime)],
          securityContext: { privileged: true },
        },
      ],
    },
  };
}

/** The kubectl command lines, each value in its own argv word (`=` forms: never read as an option). */
export const kubectlArgv = {
  create: (cfg: Config) => [cfg.paths.kubectl, 'create', `--namespace=${cfg.kubectl.namespace}`, '--filename=-', '--output=name'],
  get: (cfg: Config, name: string) => [cfg.paths.kubectl, 'get', 'pod', name, `--namespace=${cfg.kubectl.namespace}`, '--output=json'],
  /**
   * The pod now, then every change of it: one indented JSON object each, closed by a `}` line.
   * A list (by field selector), not `get pod NAME -w`: for one named object kubectl watches from
   * resourceVersion 0 and drops the first event as a repeat of what it printed, so a change
   * between its get and its watch (Pending → Running) is never printed. A list's watch starts
   * at the list's resourceVersion: nothing is lost.
   */
  watch: (cfg: Config, name: string) => [
    cfg.paths.kubectl, 'get', 'pods', `--namespace=${cfg.kubectl.namespace}`, `--field-selector=metadata.name=${name}`, '--watch', '--output=json',
  ],
  node: (cfg: Config, node: string) => [cfg.paths.kubectl, 'get', 'node', checkNodeName(node), '--output=json'],
  /** `onNode`: the command the node runs, as over ssh: timeout -k 5 N sh -s. */
  exec: (cfg: Config, name: string, onNode: readonly string[]) => [
    cfg.paths.kubectl, 'exec', '--stdin', `--namespace=${cfg.kubectl.namespace}`, name, `--container=${CONTAINER}`, '--', ...NSENTER, ...onNode,
  ],
  /** --wait=false: the kubelet kills the pod's processes; nobody waits for it (a dead node never confirms). */
  delete: (cfg: Config, names: readonly string[], force: boolean, namespace = cfg.kubectl.namespace) => [
    cfg.paths.kubectl, 'delete', 'pod', ...names, `--namespace=${namespace}`, '--wait=false', '--ignore-not-found', ...(force ? ['--grace-period=0', '--force'] : []),
  ],
  /** Every pod sneakpeek made, in the configured namespace, in `namespace`, or everywhere (null). */
  leftovers: (cfg: Config, namespace: string | null) => [
    cfg.paths.kubectl, 'get', 'pods', namespace === null ? '--all-namespaces' : `--namespace=${namespace}`, `--selector=${MANAGED_SELECTOR}`, '--output=json',
  ],
};

/**
 * Splits `kubectl get -w -o json` output into its objects. kubectl indents every line of an
 * object but its braces, and JSON strings hold no raw newline, so "\n}\n" ends one. Pure.
 */
export class WatchSplitter {
  private buf = '';
  push(chunk: string, each: (doc: unknown) => void): void {
    this.buf += chunk;
    let i: number;
    while ((i = this.buf.indexOf('\n}\n')) >= 0) {
      const text = this.buf.slice(0, i + 2);
      this.buf = this.buf.slice(i + 3);
      each(JSON.parse(text));
    }
  }
}

type Obj = { [k: string]: unknown };
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const obj = (v: unknown): Obj => (isObj(v) ? v : {});
const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObj) : []);
const str = (v: unknown) => (typeof v === 'string' ? v : '');
const said = (...parts: string[]) => parts.filter(Boolean).join(': ');

/** Container waiting reasons that will not turn into Running by themselves within a run. */
const HOPELESS = new Set([
  'ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull', 'RegistryUnavailable',
  'CreateContainerConfigError', 'CreateContainerError', 'RunContainerError', 'CrashLoopBackOff', 'PreCreateHookError', 'PreStartHookError',
]);

export type PodProgress =
  | { state: 'running' }
  /** silent: no kubelet has said anything about the pod yet (no conditions, no container status). */
  | { state: 'waiting'; why: string; silent: boolean }
  | { state: 'failed'; why: string };

/** Where a pod is on its way to Running, from `kubectl get pod -o json`. Pure. */
export function podProgress(pod: unknown): PodProgress {
  const p = obj(pod);
  const status = obj(p.status);
  const phase = str(status.phase);
  const cs = list(status.containerStatuses).find((c) => c.name === CONTAINER);
  const state = obj(cs?.state);
  if (obj(p.metadata).deletionTimestamp) return { state: 'failed', why: 'the pod is being deleted' };
  if (phase === 'Running' && isObj(state.running)) return { state: 'running' };
  if (phase === 'Failed' || phase === 'Succeeded') {
    const t = obj(state.terminated);
    return { state: 'failed', why: said(`pod ${phase}`, str(status.reason) || str(t.reason), str(status.message) || str(t.message)) };
  }
  if (isObj(state.terminated)) {
    const t = obj(state.terminated);
    return { state: 'failed', why: said('container ended', str(t.reason), str(t.message) || `exit code ${String(t.exitCode)}`) };
  }
  const conditions = list(status.conditions);
  const sched = conditions.find((c) => c.type === 'PodScheduled');
  if (sched && sched.status === 'False') return { state: 'failed', why: said(str(sched.reason) || 'not scheduled', str(sched.message)) };
  const waiting = obj(state.waiting);
  const reason = str(waiting.reason);
  if (HOPELESS.has(reason)) return { state: 'failed', why: said(reason, str(waiting.message)) };
  return { state: 'waiting', why: reason || phase || 'no status', silent: !conditions.length && !cs };
}

/** What is wrong with a node, from `kubectl get node -o json`; undefined when it is Ready. Pure. */
export function nodeProblem(node: unknown): string | undefined {
  const n = obj(node);
  const ready = list(obj(n.status).conditions).find((c) => c.type === 'Ready');
  if (ready?.status === 'True') return undefined;
  const name = str(obj(n.metadata).name);
  return `node ${name} is not Ready${ready ? ` (${said(str(ready.reason), str(ready.message)) || `Ready=${str(ready.status)}`})` : ' (no Ready condition)'}`;
}

export interface PodRow {
  namespace: string;
  name: string;
  node: string;
  phase: string;
  /** Already being deleted (a graceful delete that its node never confirmed). */
  terminating: boolean;
  /** No kubelet ever reported on it (Pending, no status): only a forced delete removes it. */
  orphaned: boolean;
}

/** True for a pod sneakpeek made: both labels, and the name podName gives that run. */
function isOurs(p: Obj): boolean {
  const m = obj(p.metadata);
  const l = obj(m.labels);
  const r = str(l[RUN_LABEL]);
  return l[MANAGED_BY] === 'sneakpeek' && RUN_RE.test(r) && new RegExp(`^sneakpeek-${r}-[1-9][0-9]*$`).test(str(m.name));
}

/** The pods of a `kubectl get pods -o json` answer that sneakpeek made (labels and name). Pure. */
export function managedPods(list_: unknown): PodRow[] {
  return list(obj(list_).items)
    .filter(isOurs)
    .map((p) => {
      const m = obj(p.metadata);
      const progress = podProgress(p);
      return {
        namespace: str(m.namespace),
        name: str(m.name),
        node: str(obj(p.spec).nodeName),
        phase: str(obj(p.status).phase) || 'Unknown',
        terminating: !!m.deletionTimestamp,
        orphaned: progress.state === 'waiting' && progress.silent,
      };
    });
}
