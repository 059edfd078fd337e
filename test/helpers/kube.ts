// A Kubernetes API double for tests: a node:http server on 127.0.0.1 that the REAL kubectl
// (v1.32) talks to, plus a kubeconfig pointing at it. It serves recorded discovery
// documents and pod lists (the `pods` given), and it behaves like an API server + kubelets
// for pods that kubectl creates: create / get / list / watch / delete / deletecollection,
// a pod lifecycle per node (see PodFate), activeDeadlineSeconds, and `kubectl exec`, run as a
// LOCAL process on this host, which stands for every node (see kube-exec.ts).
//
//   const kube = await startKube({ pods: [pod({ name: 'web-0', hostIP: '127.0.0.2',
//     containers: [{ name: 'app', id: dockerId }] })] });
//   runToolAsync('get_all_containers', ['-A'], { env: kube.env });   // KUBECONFIG + cache dir
//   kube.requests   // every path kubectl asked for, e.g. '/api/v1/namespaces/default/pods?…'
//   await kube.close();
//
//   const kube = await startKube({ nodes: [{ name: 'node-a', ip: '127.0.0.2' },
//     { name: 'node-b', fate: 'not-ready' }] });
//   kubectl create -f pod.json -o json; kubectl exec -i POD -- nsenter -t 1 -m -- sh -s
//   kube.events       // every create / delete / deletecollection / exec, with node and time
//   kube.execs        // every exec: argv run, pid, bytes each way, exit code, client gone?
//   kube.processes()  // live pids per pod of what exec started: {} when nothing is left
//
// Served: /version, /api, /apis, /api/v1, /openapi/v3 (+ api/v1: just enough for kubectl's
// fieldValidation check), /api/v1/pods, /api/v1/namespaces/NS/pods[/NAME[/exec]],
// /api/v1/nodes[/NAME], with labelSelector (=, ==, !=, k, !k, in, notin) and fieldSelector
// (metadata.name, spec.nodeName, status.phase, …), watch=true on pods. Anything else: a 404
// Status. Nodes: the declared ones, plus one per recorded pod's nodeName/hostIP (Ready; pods
// created there run). A pod pinned to a node nobody knows stays Pending (no kubelet).
// The kubeconfig's namespace is `default` unless `namespace` is given. `kube.setPods()` swaps
// the recorded list between runs; `kube.onPodList(fn)` runs fn (once) just before a pod list
// is answered. The discovery cache goes to a temp dir, never ~/.kube.
//
// exec, as the real chain answers it:
// - WebSocket (what kubectl 1.32 tries first; GET, subprotocol v5.channel.k8s.io): the API
//   server's stream translator. Its own checks fail before the upgrade (404 pod, 400 container
//   or no host) — kubectl then retries over SPDY and prints that answer. The kubelet's
//   answers come after the upgrade, as a Status on channel 3 ("Internal error occurred:
//   unable to upgrade connection: container not found (…)").
// - SPDY/3.1 (kubectl's fallback when the upgrade is refused, or with
//   KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false; POST): proxied to the kubelet, v4.channel.k8s.io;
//   the kubelet's errors come back before the upgrade, in plain text. `spdy: false` refuses it.
// - Deleting a pod or its deadline SIGKILLs what exec started for it; a dropped client does not
//   (see kube-exec.ts). close() ends every process the double started.
//
// /version says v1.32.4: /usr/bin/kubectl here is gcloud's dispatcher, which asks /version
// first and would exec a different kubectl.1.XX for another server minor.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { ExecProcess, WS_PROTOCOLS, parseExecQuery, serveExecWebSocket, statusInternal, type ExecRecord, type ExecRequest } from './kube-exec.ts';
import {
  createdStatus,
  creatingStatus,
  deadlineStatus,
  newContainerIds,
  nodeObject,
  now,
  pullErrorStatus,
  rejectedStatus,
  runningStatus,
  unschedulableStatus,
  type NodeSpec,
  type PodFate,
} from './kube-pod-status.ts';
import { checkSelectors, fieldsMatch, labelsMatch } from './kube-select.ts';
import { defaultPod, generatedName, invalidMessage, unknownFields, validatePod } from './kube-validate.ts';
import { SPDY_PROTOCOLS, isSpdyUpgrade, serveExecSpdy } from './kube-spdy.ts';
import { isWebSocketUpgrade } from './kube-websocket.ts';

export type { NodeSpec, PodFate } from './kube-pod-status.ts';
export type { ExecRecord } from './kube-exec.ts';

type Obj = Record<string, unknown>;

export interface ContainerSpec {
  name: string;
  /** Full container id (64 hex for docker); the runtime prefix is added. */
  id?: string;
  runtime?: 'docker' | 'containerd' | 'cri-o' | string;
  ready?: boolean;
  started?: boolean;
  running?: boolean;
}

export interface PodSpec {
  name: string;
  namespace?: string;
  nodeName?: string;
  /** Omit (undefined) for a pending pod without hostIP. */
  hostIP?: string;
  labels?: Record<string, string>;
  containers: ContainerSpec[];
}

/** A pod object shaped like the API server's (the fields kubectl and sneakpeek read, and more). */
export function pod(p: PodSpec): Obj {
  const ns = p.namespace ?? 'default';
  const nodeName = p.nodeName ?? (p.hostIP ? `node-${p.hostIP.replace(/\./g, '-')}` : undefined);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: p.name,
      namespace: ns,
      uid: `00000000-0000-4000-8000-${String(Math.abs(hash(ns + '/' + p.name))).padStart(12, '0').slice(0, 12)}`,
      resourceVersion: '1000',
      creationTimestamp: '2026-11-01T00:00:00Z',
      labels: p.labels ?? {},
    },
    spec: {
      ...(nodeName ? { nodeName } : {}),
      containers: p.containers.map((c) => ({ name: c.name, image: 'sneakpeek-test/busybox:1', imagePullPolicy: 'IfNotPresent' })),
      restartPolicy: 'Always',
    },
    status: {
      phase: p.hostIP ? 'Running' : 'Pending',
      ...(p.hostIP ? { hostIP: p.hostIP, hostIPs: [{ ip: p.hostIP }], podIP: '10.244.0.10', startTime: '2026-11-01T00:00:00Z' } : {}),
      containerStatuses: p.containers.map((c) => ({
        name: c.name,
        ready: c.ready ?? true,
        started: c.started ?? true,
        restartCount: 0,
        image: 'sneakpeek-test/busybox:1',
        imageID: 'docker-pullable://sneakpeek-test/busybox@sha256:' + '0'.repeat(64),
        ...(c.id ? { containerID: `${c.runtime ?? 'docker'}://${c.id}` } : {}),
        state: c.running === false ? { terminated: { exitCode: 0, reason: 'Completed' } } : { running: { startedAt: '2026-11-01T00:00:01Z' } },
        lastState: {},
      })),
    },
  };
}

function hash(s: string): number {
  let h = 0;
  for (const ch of s) h = (h * 31 + ch.charCodeAt(0)) | 0;
  return h;
}

// Recorded from a v1.32 API server (trimmed to the core group kubectl needs here).
const VERSION = { major: '1', minor: '32', gitVersion: 'v1.32.4', gitCommit: '59526cd4867447956156ae3a602fcbac10a2c335', gitTreeState: 'clean', buildDate: '2025-04-22T16:02:27Z', goVersion: 'go1.23.8', compiler: 'gc', platform: 'linux/amd64' };
const API = { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1:6443' }] };
const APIS = { kind: 'APIGroupList', apiVersion: 'v1', groups: [] };
const V1 = {
  kind: 'APIResourceList',
  groupVersion: 'v1',
  resources: [
    { name: 'namespaces', singularName: 'namespace', namespaced: false, kind: 'Namespace', verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], shortNames: ['ns'] },
    { name: 'nodes', singularName: 'node', namespaced: false, kind: 'Node', verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'], shortNames: ['no'] },
    { name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'], shortNames: ['po'], categories: ['all'] },
    { name: 'pods/exec', singularName: '', namespaced: true, kind: 'PodExecOptions', verbs: ['create', 'get'] },
    { name: 'pods/log', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get'] },
    { name: 'pods/status', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get', 'patch', 'update'] },
  ],
};
// kubectl create/apply ask OpenAPI v3 whether the server does fieldValidation (a PATCH
// operation of the kind with that query parameter); without it they want OpenAPI v2
// (protobuf). This is the smallest document that answers "yes" for Pods.
const OPENAPI_ROOT = { paths: { 'api/v1': { serverRelativeURL: '/openapi/v3/api/v1?hash=5P1D0UBLE' } } };
const OPENAPI_V1 = {
  openapi: '3.0.0',
  info: { title: 'Kubernetes', version: 'v1.32.4' },
  paths: {
    '/api/v1/namespaces/{namespace}/pods/{name}': {
      patch: {
        'x-kubernetes-group-version-kind': { group: '', version: 'v1', kind: 'Pod' },
        'x-kubernetes-action': 'patch',
        parameters: ['dryRun', 'fieldManager', 'fieldValidation', 'force'].map((name) => ({ name, in: 'query', schema: { type: name === 'force' ? 'boolean' : 'string', uniqueItems: true } })),
        responses: {},
      },
    },
  },
};

/** A Status object as the API server sends it; kubectl prints `Error from server (<reason>): <message>`. */
function status(code: number, reason: string, message: string, details?: Obj): Obj {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}
const notFound = (name: string, kind = 'pods') => status(404, 'NotFound', `${kind} "${name}" not found`, { name, kind });

export interface KubeEvent {
  /** Date.now() when the request was answered. */
  at: number;
  verb: 'create' | 'delete' | 'deletecollection' | 'exec';
  namespace: string;
  name: string;
  /** Node the pod is pinned or bound to. */
  node?: string;
  labels?: Record<string, string>;
  dryRun?: boolean;
  /** HTTP status answered (exec: 101 when the stream was opened). */
  code: number;
  /** delete: grace period asked for (undefined = the pod's default). */
  gracePeriodSeconds?: number;
}

export interface StartKubeOptions {
  /** Recorded pods served as they are (exec into them works when they are Running). */
  pods?: Obj[];
  namespace?: string;
  /** Nodes and what happens to pods created on each (a pod bound to an unknown node: not-ready). */
  nodes?: NodeSpec[];
  /** Default ms from create to Running (NodeSpec.startMs overrides). */
  startMs?: number;
  /** ms a graceful delete takes (kubelet kills, then confirms) before the pod is gone. */
  terminateMs?: number;
  /** WebSocket exec subprotocols served; [] refuses every WebSocket upgrade (kubectl then tries SPDY). */
  wsProtocols?: string[];
  /** Serve exec over SPDY/3.1 too (kubectl's fallback); default true. */
  spdy?: boolean;
  /** Extra environment for exec'd processes (on top of the container's). */
  execEnv?: Record<string, string>;
}

export interface KubeServer {
  url: string;
  kubeconfig: string;
  /** Environment for a child process: KUBECONFIG and a private discovery cache. */
  env: Record<string, string>;
  /** Paths (with query) kubectl requested, in order. */
  requests: string[];
  /** Every create / delete / deletecollection / exec request, in order. */
  events: KubeEvent[];
  /** Every exec, live-updated. */
  execs: ExecRecord[];
  setPods(pods: Obj[]): void;
  onPodList(fn: () => void): void;
  /** Current pods (recorded and created), as the API would list them. */
  pods(): Obj[];
  /** Live pids of processes exec started, per pod "namespace/name" (pods already deleted included). */
  processes(): Record<string, number[]>;
  /** Change a node's fate for pods created from now on (and its Node object). */
  setNode(spec: NodeSpec): void;
  close(): Promise<void>;
}

interface Created {
  obj: Obj;
  fate: PodFate;
  node?: NodeSpec;
  timers: Set<NodeJS.Timeout>;
  kubelet?: { hostIP?: string; startTime: string; ids: Record<string, string> };
}

interface Watcher {
  res: http.ServerResponse;
  namespace?: string;
  labelSelector: string | null;
  fieldSelector: string | null;
}

const meta = (o: Obj) => o.metadata as Obj;
const keyOf = (o: Obj) => `${meta(o).namespace}/${meta(o).name}`;
const labelsOf = (o: Obj) => (meta(o).labels ?? {}) as Record<string, string>;
const clone = <T>(o: T): T => structuredClone(o);

function readBody(req: http.IncomingMessage, limit = 16 << 20): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) reject(new Error('request body too large'));
      else parts.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

export async function startKube(opts: StartKubeOptions = {}): Promise<KubeServer> {
  let recorded = opts.pods ?? [];
  let hook: (() => void) | undefined;
  const requests: string[] = [];
  const events: KubeEvent[] = [];
  const execs: ExecRecord[] = [];
  const created = new Map<string, Created>();
  const procs = new Map<string, Set<ExecProcess>>();
  const sockets = new Set<Duplex>();
  const watchers = new Set<Watcher>();
  const history: { rv: number; type: string; obj: Obj }[] = [];
  const nodes = new Map<string, NodeSpec>((opts.nodes ?? []).map((n) => [n.name, n]));
  const bootTime = now();
  let rv = 1000;
  let closed = false;

  const allPods = () => [...recorded, ...[...created.values()].map((c) => c.obj)];
  const findPod = (ns: string, name: string): Obj | undefined => allPods().find((o) => meta(o).namespace === ns && meta(o).name === name);

  // ---- nodes: declared ones, plus those the recorded pods imply (name + hostIP, Ready, running pods)
  function nodeSpecs(): Map<string, NodeSpec & { recorded?: boolean }> {
    const out = new Map<string, NodeSpec & { recorded?: boolean }>(nodes);
    for (const p of recorded) {
      const name = (p.spec as Obj).nodeName as string | undefined;
      const ip = (p.status as Obj).hostIP as string | undefined;
      if (name && ip && !out.has(name)) out.set(name, { name, ip, fate: 'running', recorded: true });
    }
    return out;
  }
  function nodeList(): Obj[] {
    return [...nodeSpecs().values()].map((n) => {
      const o = nodeObject(n.name, n.ip, n.fate !== 'not-ready', bootTime);
      if (n.recorded) ((o.status as Obj).nodeInfo as Obj).containerRuntimeVersion = 'docker://20.10.24';
      return o;
    });
  }

  // ---- changes and watches
  function emit(type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: Obj): void {
    rv++;
    meta(obj).resourceVersion = String(rv);
    const snap = clone(obj);
    history.push({ rv, type, obj: snap });
    if (history.length > 2000) history.shift();
    for (const w of watchers) if (watchMatches(w, snap)) w.res.write(JSON.stringify({ type, object: snap }) + '\n');
  }
  function watchMatches(w: Watcher, o: Obj): boolean {
    return (!w.namespace || meta(o).namespace === w.namespace) && labelsMatch(labelsOf(o), w.labelSelector) && fieldsMatch(o, w.fieldSelector);
  }
  function setStatus(c: Created, st: Obj): void {
    if (!created.has(keyOf(c.obj))) return;
    c.obj.status = st;
    emit('MODIFIED', c.obj);
  }
  function later(c: Created, ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      c.timers.delete(t);
      fn();
    }, ms);
    c.timers.add(t);
  }

  // ---- processes of a pod (what exec started)
  const procsOf = (key: string) => procs.get(key) ?? new Set<ExecProcess>();
  async function killPod(key: string): Promise<void> {
    await Promise.all([...procsOf(key)].map((p) => p.kill()));
  }

  // ---- the lifecycle of a created pod: scheduler + kubelet of its node
  function bindNode(c: Created): NodeSpec | undefined {
    const spec = c.obj.spec as Obj;
    const known = nodeSpecs();
    let name = spec.nodeName as string | undefined;
    name ??= ((spec.nodeSelector ?? {}) as Record<string, string>)['kubernetes.io/hostname'];
    name ??= [...known.values()].find((n) => (n.fate ?? 'running') === 'running')?.name;
    // a node nobody knows has no kubelet: the pod stays Pending
    return name ? (known.get(name) ?? { name, fate: 'not-ready' }) : undefined;
  }

  function startLifecycle(c: Created): void {
    const node = bindNode(c);
    c.node = node;
    const spec = c.obj.spec as Obj;
    c.fate = node ? (node.fate ?? 'running') : 'unschedulable';
    const startMs = node?.startMs ?? opts.startMs ?? 300;
    const tick = 10; // scheduler / kubelet reaction time
    if (c.fate === 'unschedulable') {
      later(c, tick, () => setStatus(c, unschedulableStatus(c.obj, nodes.size, now())));
      return;
    }
    if (!spec.nodeName) {
      spec.nodeName = node!.name; // the binding
      emit('MODIFIED', c.obj);
    }
    if (c.fate === 'not-ready') return; // no kubelet: Pending, no status, forever
    if (c.fate === 'rejected') {
      later(c, tick, () => setStatus(c, rejectedStatus(c.obj)));
      return;
    }
    later(c, tick, () => {
      c.kubelet = { hostIP: node!.ip, startTime: now(), ids: newContainerIds(c.obj) };
      setStatus(c, creatingStatus(c.obj, c.kubelet, now()));
      const deadline = spec.activeDeadlineSeconds as number | undefined;
      if (deadline) later(c, deadline * 1000, () => void deadlineExceeded(c));
      if (c.fate === 'running') later(c, startMs, () => setStatus(c, runningStatus(c.obj, c.kubelet!, now())));
      else {
        later(c, startMs, () => setStatus(c, pullErrorStatus(c.obj, c.kubelet!, now(), false)));
        later(c, startMs * 2, () => setStatus(c, pullErrorStatus(c.obj, c.kubelet!, now(), true)));
      }
    });
  }

  async function deadlineExceeded(c: Created): Promise<void> {
    for (const t of c.timers) clearTimeout(t);
    c.timers.clear();
    await killPod(keyOf(c.obj));
    setStatus(c, deadlineStatus(c.obj, c.kubelet!, now(), c.obj.status as Obj));
  }

  /** Delete one pod as the API server + kubelet would; returns the object to answer with. */
  async function deletePod(o: Obj, grace: number | undefined): Promise<Obj> {
    const key = keyOf(o);
    const c = created.get(key);
    const spec = o.spec as Obj;
    const phase = (o.status as Obj).phase;
    const period = grace ?? (spec.terminationGracePeriodSeconds as number | undefined) ?? 30;
    // immediate: asked for, never bound to a node (unschedulable), already finished, or a recorded pod
    const immediate = period === 0 || !spec.nodeName || c?.fate === 'unschedulable' || phase === 'Failed' || phase === 'Succeeded' || !c;
    const kubeletAlive = c ? !['not-ready', 'unschedulable'].includes(c.fate) : true;
    if (!immediate && meta(o).deletionTimestamp) return o; // already terminating
    if (!immediate) {
      meta(o).deletionTimestamp = now(Date.now() + period * 1000);
      meta(o).deletionGracePeriodSeconds = period;
      emit('MODIFIED', o);
      if (!kubeletAlive) return clone(o); // nobody to confirm: Terminating until a force delete
      const answer = clone(o);
      // kubelet: SIGTERM to the container's `sleep`, which dies at once; with hostPID the shim
      // then SIGKILLs everything left in the container's cgroup — exec'd processes included.
      void killPod(key).then(() => setTimeout(() => remove(key), opts.terminateMs ?? 100));
      return answer;
    }
    if (kubeletAlive) await killPod(key);
    remove(key);
    return clone(o);
  }

  function remove(key: string): void {
    const c = created.get(key);
    if (c) {
      for (const t of c.timers) clearTimeout(t);
      created.delete(key);
      emit('DELETED', c.obj);
    } else {
      const i = recorded.findIndex((o) => keyOf(o) === key);
      if (i >= 0) recorded = recorded.filter((_, j) => j !== i);
    }
  }

  // ---- create
  async function createPod(ns: string, q: URLSearchParams, body: Buffer): Promise<[number, Obj, Record<string, string>?]> {
    let o: Obj;
    try {
      o = JSON.parse(body.toString('utf8')) as Obj;
    } catch (e) {
      return [400, status(400, 'BadRequest', `couldn't get version/kind; json parse error: ${(e as Error).message}`)];
    }
    if (o.kind !== 'Pod' || o.apiVersion !== 'v1')
      return [400, status(400, 'BadRequest', `the API version in the data (${o.apiVersion}) does not match the expected API version (v1)`)];
    o.metadata ??= {};
    o.spec ??= {};
    const unknown = unknownFields(o);
    const headers: Record<string, string> = {};
    const validation = q.get('fieldValidation') ?? 'Warn';
    if (unknown.length && validation === 'Strict')
      return [400, status(400, 'BadRequest', `Pod in version "v1" cannot be handled as a Pod: strict decoding error: ${unknown.map((f) => `unknown field "${f}"`).join(', ')}`)];
    if (unknown.length && validation === 'Warn') headers.warning = unknown.map((f) => `299 - "unknown field \\"${f}\\""`).join(', ');
    const m = meta(o);
    if (m.namespace !== undefined && m.namespace !== ns)
      return [400, status(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request')];
    m.namespace = ns;
    if (!m.name && m.generateName) m.name = generatedName(String(m.generateName));
    const causes = validatePod(o);
    const name = String(m.name ?? '');
    if (causes.length) return [422, status(422, 'Invalid', invalidMessage(name, causes), { name, kind: 'Pod', causes })];
    if (findPod(ns, name)) return [409, status(409, 'AlreadyExists', `pods "${name}" already exists`, { name, kind: 'pods' })];
    defaultPod(o);
    Object.assign(m, { uid: randomUUID(), creationTimestamp: now(), resourceVersion: String(rv) });
    delete m.deletionTimestamp;
    o.status = createdStatus(o);
    const dryRun = q.getAll('dryRun').includes('All');
    events.push({ at: Date.now(), verb: 'create', namespace: ns, name, node: (o.spec as Obj).nodeName as string | undefined, labels: (m.labels ?? {}) as Record<string, string>, dryRun, code: 201 });
    if (dryRun) return [201, o, headers];
    const c: Created = { obj: o, fate: 'running', timers: new Set() };
    created.set(keyOf(o), c);
    emit('ADDED', o);
    startLifecycle(c);
    return [201, clone(o), headers];
  }

  // ---- delete options: body (DeleteOptions) and query both count
  function deleteOptions(q: URLSearchParams, body: Buffer): { grace?: number; dryRun: boolean; uid?: string } {
    let o: Obj = {};
    try {
      if (body.length) o = JSON.parse(body.toString('utf8')) as Obj;
    } catch {
      // a malformed body: treat as no options
    }
    const g = o.gracePeriodSeconds ?? (q.get('gracePeriodSeconds') !== null ? Number(q.get('gracePeriodSeconds')) : undefined);
    const dry = (Array.isArray(o.dryRun) && (o.dryRun as string[]).includes('All')) || q.getAll('dryRun').includes('All');
    return { grace: g as number | undefined, dryRun: dry, uid: ((o.preconditions ?? {}) as Obj).uid as string | undefined };
  }

  function list(kind: string, items: Obj[]): Obj {
    if (kind === 'PodList' && hook) {
      const fn = hook;
      hook = undefined;
      fn();
    }
    return { kind, apiVersion: 'v1', metadata: { resourceVersion: String(rv) }, items };
  }

  function startWatch(res: http.ServerResponse, q: URLSearchParams, namespace?: string): void {
    const w: Watcher = { res, namespace, labelSelector: q.get('labelSelector'), fieldSelector: q.get('fieldSelector') };
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders(); // the client's watch starts with the headers, before any event
    const from = Number(q.get('resourceVersion') ?? '0');
    // resourceVersion 0/absent: start with the current state; else replay what came after it
    const initial = from ? history.filter((h) => h.rv > from).map((h) => ({ type: h.type, object: h.obj })) : allPods().map((o) => ({ type: 'ADDED', object: o }));
    for (const e of initial) if (watchMatches(w, e.object)) res.write(JSON.stringify(e) + '\n');
    watchers.add(w);
    const secs = Number(q.get('timeoutSeconds') ?? '0');
    const timer = secs > 0 ? setTimeout(() => res.end(), Math.min(secs, 1800) * 1000) : undefined;
    res.on('close', () => {
      watchers.delete(w);
      if (timer) clearTimeout(timer);
    });
  }

  // ---- the HTTP API
  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', 'http://x');
    requests.push(u.pathname + u.search);
    const send = (code: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(code, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    const q = u.searchParams;
    const p = u.pathname;
    const method = req.method ?? 'GET';
    const body = method === 'POST' || method === 'DELETE' || method === 'PUT' || method === 'PATCH' ? await readBody(req) : Buffer.alloc(0);
    try {
      checkSelectors(q.get('labelSelector'), p.includes('/nodes') ? null : q.get('fieldSelector'));
    } catch (e) {
      return send(400, status(400, 'BadRequest', (e as Error).message));
    }
    const podsIn = (ns?: string) => allPods().filter((o) => (!ns || meta(o).namespace === ns) && labelsMatch(labelsOf(o), q.get('labelSelector')) && fieldsMatch(o, q.get('fieldSelector')));
    const watching = ['true', '1'].includes(q.get('watch') ?? '');
    let m: RegExpMatchArray | null;
    if (method === 'GET') {
      if (p === '/version') return send(200, VERSION);
      if (p === '/api') return send(200, API);
      if (p === '/apis') return send(200, APIS);
      if (p === '/api/v1') return send(200, V1);
      if (p === '/openapi/v3') return send(200, OPENAPI_ROOT);
      if (p === '/openapi/v3/api/v1') return send(200, OPENAPI_V1);
      if (p === '/api/v1/pods') return watching ? startWatch(res, q) : send(200, list('PodList', podsIn()));
      if (p === '/api/v1/nodes') return send(200, list('NodeList', nodeList().filter((o) => labelsMatch(labelsOf(o), q.get('labelSelector')))));
      if ((m = p.match(/^\/api\/v1\/nodes\/([^/]+)$/))) {
        const n = nodeList().find((o) => meta(o).name === m![1]);
        return n ? send(200, n) : send(404, notFound(m[1]!, 'nodes'));
      }
      if ((m = p.match(/^\/api\/v1\/namespaces\/([^/]+)\/pods$/))) return watching ? startWatch(res, q, m[1]) : send(200, list('PodList', podsIn(m[1])));
      if ((m = p.match(/^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/))) {
        const hit = findPod(m[1]!, m[2]!);
        return hit ? send(200, hit) : send(404, notFound(m[2]!));
      }
      if ((m = p.match(/^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/(exec|attach)$/)))
        return send(400, status(400, 'BadRequest', 'Upgrade request required'));
    }
    if (method === 'POST' && (m = p.match(/^\/api\/v1\/namespaces\/([^/]+)\/pods$/))) {
      const [code, obj, headers] = await createPod(m[1]!, q, body);
      if (code !== 201) events.push({ at: Date.now(), verb: 'create', namespace: m[1]!, name: '', code });
      return send(code, obj, headers);
    }
    if (method === 'DELETE' && (m = p.match(/^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/))) {
      const [ns, name] = [m[1]!, m[2]!];
      const d = deleteOptions(q, body);
      const hit = findPod(ns, name);
      const ev: KubeEvent = { at: Date.now(), verb: 'delete', namespace: ns, name, gracePeriodSeconds: d.grace, dryRun: d.dryRun, code: 200 };
      if (!hit) {
        events.push({ ...ev, code: 404 });
        return send(404, notFound(name));
      }
      ev.node = (hit.spec as Obj).nodeName as string | undefined;
      if (d.uid && d.uid !== meta(hit).uid) {
        events.push({ ...ev, code: 409 });
        return send(409, status(409, 'Conflict', `Precondition failed: UID in precondition: ${d.uid}, UID in object meta: ${meta(hit).uid}`, { name, kind: 'pods' }));
      }
      events.push(ev);
      return send(200, d.dryRun ? hit : await deletePod(hit, d.grace));
    }
    if (method === 'DELETE' && (m = p.match(/^\/api\/v1\/namespaces\/([^/]+)\/pods$/))) {
      const d = deleteOptions(q, body);
      const hits = podsIn(m[1]);
      events.push({ at: Date.now(), verb: 'deletecollection', namespace: m[1]!, name: q.get('labelSelector') ?? '', dryRun: d.dryRun, gracePeriodSeconds: d.grace, code: 200 });
      const items = d.dryRun ? hits : await Promise.all(hits.map((o) => deletePod(o, d.grace)));
      return send(200, { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: String(rv) }, items });
    }
    send(404, status(404, 'NotFound', 'the server could not find the requested resource', {}));
  }

  // ---- exec: the API server's checks, then the kubelet's, then the stream
  function execEnv(o: Obj, container: string, tty: boolean): Record<string, string> {
    const c = (((o.spec as Obj).containers ?? []) as Obj[]).find((x) => x.name === container) ?? {};
    const env: Record<string, string> = {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOSTNAME: String((o.spec as Obj).hostNetwork ? ((o.spec as Obj).nodeName ?? meta(o).name) : meta(o).name),
      HOME: '/root',
    };
    if (tty) env.TERM = 'xterm';
    for (const e of (c.env ?? []) as Obj[]) if (typeof e.value === 'string') env[String(e.name)] = e.value;
    return { ...env, ...opts.execEnv };
  }

  /** Answer an upgrade request without upgrading: a Status (API server) or plain text (kubelet). */
  function refuseUpgrade(socket: Duplex, code: number, body: Obj | string | undefined): void {
    const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
    const type = typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json';
    const reason = http.STATUS_CODES[code] ?? 'Error';
    socket.end(`HTTP/1.1 ${code} ${reason}\r\ncontent-type: ${type}\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`);
  }

  function onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const u = new URL(req.url ?? '/', 'http://x');
    requests.push(u.pathname + u.search);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const m = u.pathname.match(/^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/exec$/);
    if (!m) return refuseUpgrade(socket, 404, status(404, 'NotFound', 'the server could not find the requested resource', {}));
    const exec: ExecRequest = parseExecQuery(u.searchParams, m[1]!, m[2]!);
    const ev: KubeEvent = { at: Date.now(), verb: 'exec', namespace: exec.namespace, name: exec.pod, code: 101 };
    const refuse = (code: number, st?: Obj | string) => {
      events.push({ ...ev, code });
      refuseUpgrade(socket, code, st);
    };
    // the API server's checks, before any upgrade (pkg/registry/core/pod streamLocation)
    const o = findPod(exec.namespace, exec.pod);
    if (!o) return refuse(404, notFound(exec.pod));
    const spec = o.spec as Obj;
    ev.node = spec.nodeName as string | undefined;
    const names = ((spec.containers ?? []) as Obj[]).map((c) => String(c.name));
    if (!exec.container) {
      if (names.length === 1) exec.container = names[0]!;
      else return refuse(400, status(400, 'BadRequest', `a container name must be specified for pod ${exec.pod}, choose one of: [${names.join(' ')}]`));
    } else if (!names.includes(exec.container))
      return refuse(400, status(400, 'BadRequest', `container ${exec.container} is not valid for pod ${exec.pod}`));
    if (!spec.nodeName) return refuse(400, status(400, 'BadRequest', `pod ${exec.pod} does not have a host assigned`));
    if (!exec.command.length) return refuse(400, status(400, 'BadRequest', 'you must specify at least 1 command'));
    // the kubelet's check: is the container running? (a pod on a dead node has no kubelet to ask)
    const st = o.status as Obj;
    const cs = ((st.containerStatuses ?? []) as Obj[]).find((s) => s.name === exec.container);
    const c = created.get(keyOf(o));
    const containerUp = st.phase === 'Running' && !!(cs?.state as Obj | undefined)?.running && (!c || !['not-ready', 'unschedulable'].includes(c.fate));
    const kubeletError = `container not found ("${exec.container}")`;
    const key = keyOf(o);
    const execOpts = {
      env: execEnv(o, exec.container, exec.tty),
      image: String((((spec.containers ?? []) as Obj[]).find((x) => x.name === exec.container) ?? {}).image ?? ''),
      onProcess: (p: ExecProcess) => {
        execs.push(p.record);
        if (!procs.has(key)) procs.set(key, new Set());
        procs.get(key)!.add(p);
      },
      onExit: (rec: ExecRecord) => {
        if (!execs.includes(rec)) execs.push(rec);
      },
    };
    const hang = containerUp && !!c?.node?.execHang;
    if (isWebSocketUpgrade(req)) {
      // the stream translator upgrades first, then asks the kubelet: its error comes as a Status on channel 3
      const precheck = () => (containerUp ? undefined : statusInternal(`unable to upgrade connection: ${kubeletError}`));
      // no subprotocol in common: golang.org/x/net/websocket answers 403, and kubectl falls back to SPDY
      if (!serveExecWebSocket(req, socket, head, exec, opts.wsProtocols ?? WS_PROTOCOLS, { ...execOpts, precheck, hang })) return refuse(403);
    } else if (isSpdyUpgrade(req) && opts.spdy !== false) {
      // SPDY: the API server proxies the upgrade to the kubelet, whose errors come back as they are
      if (!containerUp) return refuse(500, kubeletError);
      if (hang) socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n');
      else if (!serveExecSpdy(req, socket, head, exec, execOpts))
        return refuse(403, `unable to upgrade: unable to negotiate protocol: client supports [${req.headers['x-stream-protocol-version']}], server accepts [${SPDY_PROTOCOLS.join(' ')}]`);
    } else {
      return refuse(400, status(400, 'BadRequest', 'this API double serves exec over WebSocket (v5.channel.k8s.io) or, with spdy, SPDY/3.1'));
    }
    events.push(ev);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: Error) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify(status(500, 'InternalError', `Internal error occurred: ${e.message}`)));
      }
    });
  });
  server.on('upgrade', onUpgrade);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-kube-'));
  const kubeconfig = path.join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'sp-test', cluster: { server: url } }],
      contexts: [{ name: 'sp-test', context: { cluster: 'sp-test', user: 'sp-test', namespace: opts.namespace ?? 'default' } }],
      'current-context': 'sp-test',
      users: [{ name: 'sp-test', user: {} }],
    }),
  );
  return {
    url,
    kubeconfig,
    env: { KUBECONFIG: kubeconfig, KUBECACHEDIR: path.join(dir, 'cache') },
    requests,
    events,
    execs,
    setPods: (p) => void (recorded = p),
    onPodList: (fn) => void (hook = fn),
    pods: () => allPods().map(clone),
    processes: () => {
      const out: Record<string, number[]> = {};
      for (const [key, set] of procs) {
        const pids = [...set].flatMap((p) => p.pids());
        if (pids.length) out[key] = [...new Set(pids)].sort((a, b) => a - b);
      }
      return out;
    },
    setNode: (n) => void nodes.set(n.name, n),
    close: async () => {
      if (closed) return;
      closed = true;
      for (const c of created.values()) for (const t of c.timers) clearTimeout(t);
      await Promise.all([...procs.values()].flatMap((set) => [...set].map((p) => p.kill())));
      for (const w of watchers) w.res.end();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
