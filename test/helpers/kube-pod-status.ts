// Pod and Node status objects shaped like a v1.32 API server's (kubelet 1.32 + containerd
// for pod status, the default scheduler for Unschedulable, the node lifecycle controller
// for NotReady): pure builders used by the Kubernetes API double's lifecycle.
import { randomBytes } from 'node:crypto';

type Obj = Record<string, unknown>;

/**
 * What happens to a pod created on a node (chosen per node by the test):
 * - `running`: kubelet starts it: Pending (ContainerCreating), then Running and Ready.
 * - `unschedulable`: stays Pending with PodScheduled=False/Unschedulable, the default
 *   scheduler's condition. (A real pod pinned with spec.nodeName skips the scheduler; this
 *   is the shape a pod placed by nodeSelector/affinity gets.)
 * - `image-pull`: the kubelet cannot pull the image: Pending, container waiting
 *   ErrImagePull, then ImagePullBackOff.
 * - `rejected`: kubelet admission refuses it (e.g. OutOfcpu): Failed at once.
 * - `not-ready`: the node's kubelet is gone: the Node is NotReady (Unknown) and the pod
 *   stays Pending with no conditions and no container statuses, forever.
 */
export type PodFate = 'running' | 'unschedulable' | 'image-pull' | 'rejected' | 'not-ready';

export interface NodeSpec {
  name: string;
  /** InternalIP (default: none; hostNetwork pods then get no hostIP/podIP). */
  ip?: string;
  fate?: PodFate;
  /** ms from create to Running (fate `running`), or to ErrImagePull (fate `image-pull`). */
  startMs?: number;
  /**
   * The node's container runtime takes exec requests and never answers (a wedged CRI): the
   * stream opens, nothing runs, nothing comes back — only the client's own deadline ends it.
   */
  execHang?: boolean;
}

export const now = (t = Date.now()) => new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** docker.io normalisation, as the runtime reports `image` (busybox → docker.io/library/busybox:latest). */
export function normalizeImage(image: string): string {
  let name = image;
  const first = name.split('/')[0]!;
  if (!name.includes('/')) name = `docker.io/library/${name}`;
  else if (!first.includes('.') && !first.includes(':') && first !== 'localhost') name = `docker.io/${name}`;
  const last = name.slice(name.lastIndexOf('/') + 1);
  if (!last.includes(':') && !name.includes('@')) name += ':latest';
  return name;
}

const hex = (n: number) => randomBytes(n).toString('hex');

function containersOf(pod: Obj): Obj[] {
  return (((pod.spec as Obj)?.containers as Obj[]) ?? []).filter(Boolean);
}

export function qosClass(pod: Obj): string {
  const cs = containersOf(pod);
  const res = cs.map((c) => (c.resources ?? {}) as Obj);
  if (res.every((r) => !r.requests && !r.limits)) return 'BestEffort';
  const full = res.every((r) => {
    const lim = (r.limits ?? {}) as Obj;
    const req = (r.requests ?? lim) as Obj;
    return lim.cpu && lim.memory && req.cpu === lim.cpu && req.memory === lim.memory;
  });
  return full ? 'Guaranteed' : 'Burstable';
}

/** The status the API server returns on create, before anyone acts on the pod. */
export function createdStatus(pod: Obj): Obj {
  return { phase: 'Pending', qosClass: qosClass(pod) };
}

const cond = (type: string, status: string, at: string, extra: Obj = {}): Obj => ({
  type,
  status,
  lastProbeTime: null,
  lastTransitionTime: at,
  ...extra,
});

export function unschedulableStatus(pod: Obj, nodeCount: number, at: string): Obj {
  const n = Math.max(nodeCount, 1);
  return {
    phase: 'Pending',
    conditions: [
      cond('PodScheduled', 'False', at, {
        reason: 'Unschedulable',
        message: `0/${n} nodes are available: ${n} node(s) didn't match Pod's node affinity/selector. preemption: 0/${n} nodes are available: ${n} Preemption is not helpful for scheduling.`,
      }),
    ],
    qosClass: qosClass(pod),
  };
}

export function rejectedStatus(pod: Obj): Obj {
  return {
    phase: 'Failed',
    reason: 'OutOfcpu',
    message: 'Pod was rejected: Node didn\'t have enough resource: cpu, requested: 100, used: 3950, capacity: 4000',
    qosClass: qosClass(pod),
  };
}

interface KubeletView {
  hostIP?: string;
  startTime: string;
  /** Per container name: its containerd id once started. */
  ids: Record<string, string>;
}

function base(pod: Obj, k: KubeletView): Obj {
  const hostNetwork = (pod.spec as Obj).hostNetwork === true;
  const ips = k.hostIP ? { hostIP: k.hostIP, hostIPs: [{ ip: k.hostIP }] } : {};
  const podIP = hostNetwork ? k.hostIP : `10.244.${1 + (parseInt(hex(1), 16) % 250)}.${2 + (parseInt(hex(1), 16) % 250)}`;
  return { ...ips, ...(podIP ? { podIP, podIPs: [{ ip: podIP }] } : {}), startTime: k.startTime, qosClass: qosClass(pod) };
}

const mounts = [{ name: 'kube-api-access', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true, recursiveReadOnly: 'Disabled' }];

function containerStatus(c: Obj, state: Obj, extra: Obj = {}): Obj {
  return {
    name: c.name,
    state,
    lastState: {},
    ready: false,
    restartCount: 0,
    image: String(c.image ?? ''),
    imageID: '',
    started: false,
    volumeMounts: mounts,
    ...extra,
  };
}

function notReady(pod: Obj, at: string, reason = 'ContainersNotReady'): Obj[] {
  const names = containersOf(pod).map((c) => c.name).join(' ');
  const msg = reason === 'ContainersNotReady' ? { reason, message: `containers with unready status: [${names}]` } : { reason };
  return [cond('Ready', 'False', at, msg), cond('ContainersReady', 'False', at, msg)];
}

/** Kubelet has the pod, containers not started yet (ContainerCreating). */
export function creatingStatus(pod: Obj, k: KubeletView, at: string): Obj {
  return {
    phase: 'Pending',
    conditions: [cond('PodReadyToStartContainers', 'True', at), cond('Initialized', 'True', at), ...notReady(pod, at), cond('PodScheduled', 'True', at)],
    ...base(pod, k),
    containerStatuses: containersOf(pod).map((c) => containerStatus(c, { waiting: { reason: 'ContainerCreating' } })),
  };
}

export function pullErrorStatus(pod: Obj, k: KubeletView, at: string, backOff: boolean): Obj {
  const st = creatingStatus(pod, k, at);
  st.containerStatuses = containersOf(pod).map((c) => {
    const image = String(c.image ?? '');
    const ref = normalizeImage(image);
    const pullErr = `rpc error: code = NotFound desc = failed to pull and unpack image "${ref}": failed to resolve reference "${ref}": ${ref}: not found`;
    const waiting = backOff
      ? { reason: 'ImagePullBackOff', message: `Back-off pulling image "${image}": ErrImagePull: ${pullErr}` }
      : { reason: 'ErrImagePull', message: pullErr };
    return containerStatus(c, { waiting });
  });
  return st;
}

export function runningStatus(pod: Obj, k: KubeletView, at: string): Obj {
  return {
    phase: 'Running',
    conditions: [
      cond('PodReadyToStartContainers', 'True', at),
      cond('Initialized', 'True', at),
      cond('Ready', 'True', at),
      cond('ContainersReady', 'True', at),
      cond('PodScheduled', 'True', at),
    ],
    ...base(pod, k),
    containerStatuses: containersOf(pod).map((c) =>
      containerStatus(
        c,
        { running: { startedAt: at } },
        {
          ready: true,
          started: true,
          image: normalizeImage(String(c.image ?? '')),
          imageID: `${normalizeImage(String(c.image ?? '')).replace(/:[^:/]+$/, '')}@sha256:${hex(32)}`,
          containerID: `containerd://${k.ids[String(c.name)]}`,
        },
      ),
    ),
  };
}

/** activeDeadlineSeconds passed: the kubelet kills the containers and fails the pod. */
export function deadlineStatus(pod: Obj, k: KubeletView, at: string, previous: Obj): Obj {
  const prev = ((previous.containerStatuses ?? []) as Obj[]).reduce<Record<string, Obj>>((m, s) => ((m[String(s.name)] = s), m), {});
  return {
    phase: 'Failed',
    reason: 'DeadlineExceeded',
    message: 'Pod was active on the node longer than the specified deadline',
    conditions: [
      cond('PodReadyToStartContainers', 'False', at),
      cond('Initialized', 'True', at),
      ...notReady(pod, at, 'PodFailed'),
      cond('PodScheduled', 'True', at),
    ],
    ...base(pod, k),
    containerStatuses: containersOf(pod).map((c) => {
      const was = prev[String(c.name)];
      const running = (was?.state as Obj | undefined)?.running as Obj | undefined;
      if (!running) return containerStatus(c, { waiting: (was?.state as Obj | undefined)?.waiting ?? { reason: 'ContainerCreating' } });
      return containerStatus(
        c,
        {
          terminated: {
            // busybox `sleep` dies of the kubelet's SIGTERM: 128 + 15
            exitCode: 143,
            reason: 'Error',
            startedAt: running.startedAt,
            finishedAt: at,
            containerID: was!.containerID,
          },
        },
        { image: was!.image, imageID: was!.imageID, containerID: was!.containerID },
      );
    }),
  };
}

export function newContainerIds(pod: Obj): Record<string, string> {
  return Object.fromEntries(containersOf(pod).map((c) => [String(c.name), hex(32)]));
}

/** A Node object; `ready: false` is what the node lifecycle controller sets when the kubelet stops posting. */
export function nodeObject(name: string, ip: string | undefined, ready: boolean, created: string): Obj {
  const at = created;
  const kubelet = ready
    ? [
        cond('MemoryPressure', 'False', at, { lastHeartbeatTime: at, reason: 'KubeletHasSufficientMemory', message: 'kubelet has sufficient memory available' }),
        cond('DiskPressure', 'False', at, { lastHeartbeatTime: at, reason: 'KubeletHasNoDiskPressure', message: 'kubelet has no disk pressure' }),
        cond('PIDPressure', 'False', at, { lastHeartbeatTime: at, reason: 'KubeletHasSufficientPID', message: 'kubelet has sufficient PID available' }),
        cond('Ready', 'True', at, { lastHeartbeatTime: at, reason: 'KubeletReady', message: 'kubelet is posting ready status' }),
      ]
    : ['MemoryPressure', 'DiskPressure', 'PIDPressure', 'Ready'].map((t) =>
        cond(t, 'Unknown', at, { lastHeartbeatTime: at, reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.' }),
      );
  for (const c of kubelet) delete c.lastProbeTime;
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      uid: `00000000-0000-4000-9000-${hex(6)}`,
      resourceVersion: '1000',
      creationTimestamp: created,
      labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64' },
    },
    spec: ready
      ? {}
      : {
          taints: [
            { key: 'node.kubernetes.io/unreachable', effect: 'NoSchedule', timeAdded: at },
            { key: 'node.kubernetes.io/unreachable', effect: 'NoExecute', timeAdded: at },
          ],
        },
    status: {
      addresses: [...(ip ? [{ type: 'InternalIP', address: ip }] : []), { type: 'Hostname', address: name }],
      conditions: kubelet,
      nodeInfo: { containerRuntimeVersion: 'containerd://1.7.24', kubeletVersion: 'v1.32.4', kubeProxyVersion: 'v1.32.4', operatingSystem: 'linux', architecture: 'amd64' },
    },
  };
}
