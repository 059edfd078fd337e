// A Kubernetes API for tests: a node:http server on 127.0.0.1 that serves recorded
// discovery documents and pod/node lists, plus a kubeconfig pointing at it, so the REAL
// kubectl client (its discovery, flags, -n/-A/-l handling) is exercised.
//
//   const kube = await startKube({ pods: [pod({ name: 'web-0', hostIP: '127.0.0.2',
//     containers: [{ name: 'app', id: dockerId }] })] });
//   runToolAsync('get_all_containers', ['-A'], { env: kube.env });   // KUBECONFIG + cache dir
//   kube.requests   // every path kubectl asked for, e.g. '/api/v1/namespaces/default/pods?…'
//   await kube.close();
//
// Served: /version, /api, /apis, /api/v1, /api/v1/pods, /api/v1/namespaces/NS/pods,
// /api/v1/namespaces/NS/pods/NAME, /api/v1/nodes (nodes derived from the pods' hostIPs),
// with labelSelector (k=v, k==v, k!=v, k, !k; comma = and). Anything else: a 404 Status.
// kubeconfig's current namespace is `default` unless `namespace` is given. `kube.setPods()`
// swaps the list between runs; `kube.onPodList(fn)` runs fn (once) just before a pod list is
// answered — e.g. remove a container "between discovery and action". The discovery cache
// goes to a temp dir, never ~/.kube.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

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
const VERSION = { major: '1', minor: '32', gitVersion: 'v1.32.4', platform: 'linux/amd64', goVersion: 'go1.23.8', compiler: 'gc' };
const API = { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1:6443' }] };
const APIS = { kind: 'APIGroupList', apiVersion: 'v1', groups: [] };
const V1 = {
  kind: 'APIResourceList',
  groupVersion: 'v1',
  resources: [
    { name: 'namespaces', singularName: 'namespace', namespaced: false, kind: 'Namespace', verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], shortNames: ['ns'] },
    { name: 'nodes', singularName: 'node', namespaced: false, kind: 'Node', verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'], shortNames: ['no'] },
    { name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'], shortNames: ['po'], categories: ['all'] },
    { name: 'pods/log', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get'] },
  ],
};

/** Minimal label selector: k=v, k==v, k!=v, k, !k, comma-separated (all must hold). */
function selects(labels: Record<string, string>, sel: string | null): boolean {
  if (!sel) return true;
  return sel.split(',').every((raw) => {
    const r = raw.trim();
    let m: RegExpMatchArray | null;
    if ((m = r.match(/^([^=!]+)!=(.*)$/))) return labels[m[1]!] !== m[2];
    if ((m = r.match(/^([^=!]+)==?(.*)$/))) return labels[m[1]!] === m[2];
    if (r.startsWith('!')) return !(r.slice(1) in labels);
    return r in labels;
  });
}

function nodesOf(pods: Obj[]): Obj[] {
  const seen = new Map<string, Obj>();
  for (const p of pods) {
    const st = p.status as Obj;
    const name = (p.spec as Obj).nodeName as string | undefined;
    const ip = st.hostIP as string | undefined;
    if (!name || !ip || seen.has(name)) continue;
    seen.set(name, {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name, labels: { 'kubernetes.io/hostname': name } },
      status: {
        addresses: [{ type: 'InternalIP', address: ip }, { type: 'Hostname', address: name }],
        conditions: [{ type: 'Ready', status: 'True' }],
        nodeInfo: { containerRuntimeVersion: 'docker://20.10.24', kubeletVersion: 'v1.32.4' },
      },
    });
  }
  return [...seen.values()];
}

export interface KubeServer {
  url: string;
  kubeconfig: string;
  /** Environment for a child process: KUBECONFIG and a private discovery cache. */
  env: Record<string, string>;
  /** Paths (with query) kubectl requested, in order. */
  requests: string[];
  setPods(pods: Obj[]): void;
  onPodList(fn: () => void): void;
  close(): Promise<void>;
}

export async function startKube(opts: { pods: Obj[]; namespace?: string }): Promise<KubeServer> {
  let pods = opts.pods;
  let hook: (() => void) | undefined;
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    requests.push(u.pathname + u.search);
    const send = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const list = (kind: string, items: Obj[]) => {
      if (kind === 'PodList' && hook) {
        const fn = hook;
        hook = undefined;
        fn();
      }
      send(200, { kind, apiVersion: 'v1', metadata: { resourceVersion: '1000' }, items });
    };
    const sel = u.searchParams.get('labelSelector');
    const labelsOf = (o: Obj) => ((o.metadata as Obj).labels ?? {}) as Record<string, string>;
    const p = u.pathname;
    let m: RegExpMatchArray | null;
    if (p === '/version') return send(200, VERSION);
    if (p === '/api') return send(200, API);
    if (p === '/apis') return send(200, APIS);
    if (p === '/api/v1') return send(200, V1);
    if (p === '/api/v1/pods') return list('PodList', pods.filter((o) => selects(labelsOf(o), sel)));
    if (p === '/api/v1/nodes') return list('NodeList', nodesOf(pods).filter((o) => selects(labelsOf(o), sel)));
    if ((m = p.match(/^\/api\/v1\/namespaces\/([^/]+)\/pods$/)))
      return list('PodList', pods.filter((o) => (o.metadata as Obj).namespace === m![1] && selects(labelsOf(o), sel)));
    if ((m = p.match(/^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/))) {
      const hit = pods.find((o) => (o.metadata as Obj).namespace === m![1] && (o.metadata as Obj).name === m![2]);
      if (hit) return send(200, hit);
    }
    send(404, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'the server could not find the requested resource', reason: 'NotFound', code: 404 });
  });
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
    setPods: (p) => void (pods = p),
    onPodList: (fn) => void (hook = fn),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        });
      }),
  };
}
