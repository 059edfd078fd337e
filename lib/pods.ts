// `kubectl get pods -o json` → one record per container that sneakpeek can work on. Pure.
//
// The original's rule: a container is listed when it is `ready` and `started`; `--running`
// lists every container in state running regardless of readiness. Statuses are matched to
// the pod spec's containers by NAME (the original's jq crossed every name with every status).
// Init containers: classic ones have exited before the pod runs and never match; sidecar
// init containers (restartPolicy: Always) are long-running and follow the same rule.
// Ephemeral (kubectl debug) containers are never listed: they are someone's debug session.
// Pods without a hostIP (pending, not scheduled) are skipped, and so are items of a List that
// are not Pods. A container listed twice (same node, same id) is one container.
import { UsageError } from './errors.ts';
import { isHostIP } from './targets.ts';

export interface PodContainer {
  pod: string;
  namespace: string;
  /** Container name in the pod spec. */
  container: string;
  /** spec.nodeName (may be empty in saved files). */
  nodeName: string;
  /** status.hostIP: where sneakpeek reaches the node. */
  nodeIP: string;
  /** docker, containerd, cri-o, … (the containerID prefix without ://). */
  runtime: string;
  /** Full container id, without the runtime prefix. */
  id: string;
  /** The original's CONTAINER_ID: the first 12 characters of the id. */
  shortId: string;
}

export interface PodFilter {
  /** Pods to leave out: `NAME` (any namespace) or `NAMESPACE/NAME`. */
  exclude?: readonly string[];
  /** Running regardless of readiness (instead of ready && started). */
  running?: boolean;
  /** Only this namespace (for saved files; kubectl filters itself). */
  namespace?: string;
  /** Label selector (for saved files; kubectl filters itself). */
  selector?: string;
}

export interface PodsResult {
  containers: PodContainer[];
  /** Values that cannot be valid (a hostIP that is no address, a hostile id): one line each. */
  problems: string[];
  /** Why containers were left out, for -v. */
  skipped: string[];
}

type Obj = { [k: string]: unknown };
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown) => (typeof v === 'string' ? v : '');
const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObj) : []);

/** A value from the pod list for a message: plain names as they are, anything else JSON-quoted. */
const shown = (v: unknown) => (typeof v === 'string' && /^[A-Za-z0-9._:-]+$/.test(v) ? v : JSON.stringify(v) ?? String(v));
const kindOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `a ${typeof v}`);

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{11,127}$/;
const RUNTIME = /^[a-z0-9][a-z0-9.+-]*$/;

/** A namespace name as Kubernetes allows it (DNS label); refuses anything else. */
export function checkNamespace(ns: string): string {
  if (!DNS_LABEL.test(ns)) throw new UsageError(`invalid namespace ${JSON.stringify(ns)}: expected a DNS label (a-z, 0-9, '-')`);
  return ns;
}

/** An -e value: POD or NAMESPACE/POD, as Kubernetes names them. */
export function checkPodExclusion(e: string): string {
  const slash = e.indexOf('/');
  const name = slash < 0 ? e : e.slice(slash + 1);
  if (slash >= 0) checkNamespace(e.slice(0, slash));
  if (!DNS_SUBDOMAIN.test(name))
    throw new UsageError(`invalid pod name ${JSON.stringify(e)} for -e: expected a Kubernetes name (a-z, 0-9, '-', '.'), or NAMESPACE/NAME`);
  return e;
}

/** A label selector, as kubectl takes it: one line of label keys, values and operators. */
export function checkSelector(sel: string): string {
  if (!/^[A-Za-z0-9_.\/=!, ()-]+$/.test(sel) || sel.startsWith('-'))
    throw new UsageError(`invalid label selector ${JSON.stringify(sel)}: expected e.g. app=web,tier!=db`);
  return sel;
}

interface Requirement {
  key: string;
  op: 'in' | 'notin' | 'exists' | '!exists';
  values: string[];
}

/** Parse a label selector (equality- and set-based, as kubectl accepts them). */
export function parseSelector(sel: string): Requirement[] {
  const reqs: Requirement[] = [];
  // Split on commas outside parentheses.
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of sel) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  for (const raw of parts) {
    const p = raw.trim();
    let m: RegExpMatchArray | null;
    if ((m = p.match(/^([^\s=!()]+)\s*(==|=|!=)\s*([^\s=!(),]*)$/))) {
      reqs.push({ key: m[1]!, op: m[2] === '!=' ? 'notin' : 'in', values: [m[3]!] });
    } else if ((m = p.match(/^([^\s=!()]+)\s+(in|notin)\s*\(([^()]*)\)$/))) {
      reqs.push({ key: m[1]!, op: m[2] as 'in' | 'notin', values: m[3]!.split(',').map((v) => v.trim()) });
    } else if ((m = p.match(/^(!?)([^\s=!(),]+)$/))) {
      reqs.push({ key: m[2]!, op: m[1] ? '!exists' : 'exists', values: [] });
    } else {
      throw new UsageError(`invalid label selector ${JSON.stringify(sel)}: cannot read '${p}'`);
    }
  }
  return reqs;
}

export function matchesSelector(labels: Record<string, unknown>, reqs: readonly Requirement[]): boolean {
  return reqs.every((r) => {
    const has = Object.hasOwn(labels, r.key);
    const v = has ? String(labels[r.key]) : undefined;
    switch (r.op) {
      case 'exists': return has;
      case '!exists': return !has;
      case 'in': return has && r.values.includes(v!);
      case 'notin': return !has || !r.values.includes(v!);
    }
  });
}

/** The pods of a PodList / List / single Pod document. */
export function podItems(doc: unknown, source = 'pods'): Obj[] {
  if (!isObj(doc)) throw new UsageError(`${source}: not a pod list (expected the output of kubectl get pods -o json)`);
  if (doc.kind === 'Pod') return [doc];
  if (Array.isArray(doc.items)) return list(doc.items);
  throw new UsageError(`${source}: not a pod list (no .items; expected the output of kubectl get pods -o json)`);
}

/** Parse JSON text of a pod list with a clear error. */
export function parsePodsJson(text: string, source = 'pods'): Obj[] {
  if (!text.trim()) throw new UsageError(`${source}: empty; expected the output of kubectl get pods -o json`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new UsageError(`${source}: not JSON; expected the output of kubectl get pods -o json`);
  }
  return podItems(doc, source);
}

/** ready && started (started missing on old clusters: running counts as started); or just running. */
function wanted(status: Obj, running: boolean): { ok: boolean; why: string } {
  const state = isObj(status.state) ? status.state : {};
  const isRunning = isObj(state.running);
  if (running) return { ok: isRunning, why: 'not running' };
  const started = typeof status.started === 'boolean' ? status.started : isRunning;
  if (status.ready !== true) return { ok: false, why: 'not ready' };
  if (!started) return { ok: false, why: 'not started' };
  return { ok: true, why: '' };
}

/** Pods → containers to work on. Pure; never throws for one bad pod (see problems). */
export function podContainers(pods: readonly Obj[], f: PodFilter = {}): PodsResult {
  const out: PodsResult = { containers: [], problems: [], skipped: [] };
  const exclude = new Set(f.exclude ?? []);
  const reqs = f.selector ? parseSelector(f.selector) : [];
  // One target per container: the same container listed twice (a pods file put together by
  // hand, a List of two overlapping queries) would otherwise be set up twice in one run.
  const seen = new Map<string, string>();
  for (const pod of pods) {
    const meta = isObj(pod.metadata) ? pod.metadata : {};
    const spec = isObj(pod.spec) ? pod.spec : {};
    const status = isObj(pod.status) ? pod.status : {};
    // `kubectl get pods,svc -o json` mixes kinds in one List; no kind (a trimmed file) is a Pod.
    if (pod.kind !== undefined && pod.kind !== 'Pod') {
      const ns = typeof meta.namespace === 'string' && meta.namespace ? `${shown(meta.namespace)}/` : '';
      out.skipped.push(`${shown(pod.kind)} ${ns}${shown(meta.name)}: not a Pod`);
      continue;
    }
    const name = str(meta.name);
    if (meta.namespace !== undefined && typeof meta.namespace !== 'string') {
      out.problems.push(`pod ${shown(name)}: invalid namespace ${shown(meta.namespace)}: expected a string, got ${kindOf(meta.namespace)}`);
      continue;
    }
    const namespace = str(meta.namespace) || 'default';
    if (!DNS_SUBDOMAIN.test(name) || !DNS_LABEL.test(namespace)) {
      out.problems.push(`pod ${JSON.stringify(`${namespace}/${name}`)}: invalid pod or namespace name`);
      continue;
    }
    const where = `pod ${namespace}/${name}`;
    if (exclude.has(name) || exclude.has(`${namespace}/${name}`)) {
      out.skipped.push(`${where}: excluded (-e)`);
      continue;
    }
    if (f.namespace !== undefined && namespace !== f.namespace) continue;
    if (reqs.length && !matchesSelector(isObj(meta.labels) ? meta.labels : {}, reqs)) continue;
    const hostIP = str(status.hostIP);
    if (!hostIP) {
      out.skipped.push(`${where}: no hostIP (pending or not scheduled)`);
      continue;
    }
    if (!isHostIP(hostIP)) {
      out.problems.push(`${where}: invalid hostIP ${JSON.stringify(hostIP)}: not an IP address`);
      continue;
    }
    const sidecars = new Set(list(spec.initContainers).filter((c) => c.restartPolicy === 'Always').map((c) => str(c.name)));
    // Spec order, statuses matched by name; without a spec (trimmed file), the statuses' own order.
    const specNames = [...list(spec.containers).map((c) => str(c.name)), ...sidecars];
    const statuses = new Map<string, Obj>();
    for (const s of list(status.containerStatuses)) statuses.set(str(s.name), s);
    for (const s of list(status.initContainerStatuses)) if (sidecars.has(str(s.name))) statuses.set(str(s.name), s);
    const names = specNames.length ? specNames : [...statuses.keys()];
    for (const cname of names) {
      const s = statuses.get(cname);
      if (!DNS_LABEL.test(cname)) {
        out.problems.push(`${where}: invalid container name ${JSON.stringify(cname)}`);
        continue;
      }
      const what = `${where} container ${cname}`;
      if (!s) {
        out.skipped.push(`${what}: no status yet`);
        continue;
      }
      const w = wanted(s, f.running ?? false);
      if (!w.ok) {
        out.skipped.push(`${what}: ${w.why}`);
        continue;
      }
      const cid = str(s.containerID);
      const sep = cid.indexOf('://');
      if (!cid) {
        out.skipped.push(`${what}: no containerID yet`);
        continue;
      }
      const runtime = sep < 0 ? '' : cid.slice(0, sep);
      const id = sep < 0 ? cid : cid.slice(sep + 3);
      if (!RUNTIME.test(runtime) || !CONTAINER_ID.test(id)) {
        out.problems.push(`${what}: invalid containerID ${JSON.stringify(cid)}: expected RUNTIME://ID`);
        continue;
      }
      const key = `${hostIP}\n${id}`;
      const first = seen.get(key);
      if (first !== undefined) {
        out.skipped.push(`${what}: listed twice (the same container as ${first}, node ${hostIP})`);
        continue;
      }
      seen.set(key, what);
      out.containers.push({
        pod: name,
        namespace,
        container: cname,
        nodeName: str(spec.nodeName),
        nodeIP: hostIP,
        runtime,
        id,
        shortId: id.slice(0, 12),
      });
    }
  }
  return out;
}

/** The original's line: NODE_IP,CONTAINER_ID. */
export const containerLine = (c: PodContainer) => `${c.nodeIP},${c.shortId}`;

/** With transport kubectl: NODE_NAME,CONTAINER_ID (what -a takes then). */
export const containerNameLine = (c: PodContainer) => `${c.nodeName},${c.shortId}`;

/** --json: one object per container (engine: what sneakpeek's tools use for it on its node). */
export const containerJson = (c: PodContainer, engine?: string) =>
  JSON.stringify({
    pod: c.pod,
    namespace: c.namespace,
    container: c.container,
    node: c.nodeName,
    nodeIP: c.nodeIP,
    runtime: c.runtime,
    id: c.id,
    ...(engine ? { engine } : {}),
  });
