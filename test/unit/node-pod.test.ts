// Transport kubectl, the pure half (lib/node-pod.ts): the pod, the kubectl command lines, and
// what pod and node statuses say — statuses shaped as a v1.32 API server answers them.
import { describe, expect, it } from 'vitest';
import { forTransport } from '../../lib/cluster.ts';
import { DEFAULTS, resolveConfig, type Config } from '../../lib/config.ts';
import { kubectlArgv, managedPods, nodeProblem, podManifest, podName, podProgress, WatchSplitter } from '../../lib/node-pod.ts';
import { onNode, transportNote, viaPod } from '../../lib/io/runner.ts';
import { checkNode, checkNodeName } from '../../lib/targets.ts';
import type { PodContainer } from '../../lib/pods.ts';

const kcfg = (over: Partial<Config['kubectl']> = {}): Config => ({ ...structuredClone(DEFAULTS), transport: 'kubectl', kubectl: { ...DEFAULTS.kubectl, ...over } });

describe('podName', () => {
  it.each([['abcd1234', 1, 'sneakpeek-abcd1234-1'], ['z2z2', 42, 'sneakpeek-z2z2-42']] as const)('%s %i → %s', (run, n, want) => {
    expect(podName(run, n)).toBe(want);
  });
  it.each([['ABCD', 1], ['ab', 1], ['abcd-1', 1], ['abcd', 0], ['abcd', 1.5]] as const)('refuses %j %j', (run, n) => {
    expect(() => podName(run, n)).toThrow(/bad pod name/);
  });
});

describe('podManifest: one privileged pod pinned to the node, bounded in time, labelled', () => {
  it('has exactly the fields the transport relies on', () => {
    expect(podManifest({ name: 'sneakpeek-abcd-1', run: 'abcd', node: 'node-a', lifetime: 130 }, kcfg())).toEqual({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'sneakpeek-abcd-1',
        namespace: 'default',
        labels: { 'app.kubernetes.io/managed-by': 'sneakpeek', 'sneakpeek.io/run': 'abcd' },
      },
      spec: {
        nodeName: 'node-a',
        hostPID: true,
        hostNetwork: true,
        hostIPC: true,
        restartPolicy: 'Never',
        activeDeadlineSeconds: 130,
        terminationGracePeriodSeconds: 1,
        tolerations: [{ operator: 'Exists' }],
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        containers: [{
          name: 'sneakpeek', image: 'busybox:1.36', imagePullPolicy: 'IfNotPresent', command: ['sleep', '130'], securityContext: { privileged: true },
        }],
      },
    });
  });
  it('takes namespace, image and pull secret from the config', () => {
    const m = podManifest({ name: 'sneakpeek-abcd-2', run: 'abcd', node: 'ip-10-0-0-3.ec2.internal', lifetime: 5 },
      kcfg({ namespace: 'sneakpeek', image: 'registry.example/tools/busybox@sha256:' + 'a'.repeat(64), pullSecret: 'regcred' })) as {
      metadata: { namespace: string }; spec: { imagePullSecrets: unknown; nodeName: string; containers: { image: string }[] };
    };
    expect(m.metadata.namespace).toBe('sneakpeek');
    expect(m.spec.imagePullSecrets).toEqual([{ name: 'regcred' }]);
    expect(m.spec.nodeName).toBe('ip-10-0-0-3.ec2.internal');
    expect(m.spec.containers[0]!.image).toBe('registry.example/tools/busybox@sha256:' + 'a'.repeat(64));
  });
  it.each(['Node-A', 'a b', '-x', ''])('refuses the node name %j', (node) => {
    expect(() => podManifest({ name: 'sneakpeek-abcd-1', run: 'abcd', node, lifetime: 5 }, kcfg())).toThrow(/invalid node name/);
  });
});

describe('kubectl command lines', () => {
  const c = kcfg({ namespace: 'ops' });
  it.each([
    ['create', kubectlArgv.create(c), ['kubectl', 'create', '--namespace=ops', '--filename=-', '--output=name']],
    ['get', kubectlArgv.get(c, 'sneakpeek-abcd-1'), ['kubectl', 'get', 'pod', 'sneakpeek-abcd-1', '--namespace=ops', '--output=json']],
    ['watch', kubectlArgv.watch(c, 'sneakpeek-abcd-1'), ['kubectl', 'get', 'pods', '--namespace=ops', '--field-selector=metadata.name=sneakpeek-abcd-1', '--watch', '--output=json']],
    ['node', kubectlArgv.node(c, 'node-a'), ['kubectl', 'get', 'node', 'node-a', '--output=json']],
    ['exec: nsenter into PID 1, then the node command ssh would run', kubectlArgv.exec(c, 'sneakpeek-abcd-1', onNode(60)), [
      'kubectl', 'exec', '--stdin', '--namespace=ops', 'sneakpeek-abcd-1', '--container=sneakpeek', '--',
      'nsenter', '-t', '1', '-m', '-u', '-i', '-n', '-p', '--', 'timeout', '-k', '5', '60', 'sh', '-s',
    ]],
    ['delete', kubectlArgv.delete(c, ['sneakpeek-abcd-1'], false), ['kubectl', 'delete', 'pod', 'sneakpeek-abcd-1', '--namespace=ops', '--wait=false', '--ignore-not-found']],
    ['delete, never ran', kubectlArgv.delete(c, ['a', 'b'], true, 'x'), ['kubectl', 'delete', 'pod', 'a', 'b', '--namespace=x', '--wait=false', '--ignore-not-found', '--grace-period=0', '--force']],
    ['leftovers here', kubectlArgv.leftovers(c, 'ops'), ['kubectl', 'get', 'pods', '--namespace=ops', '--selector=app.kubernetes.io/managed-by=sneakpeek,sneakpeek.io/run', '--output=json']],
    ['leftovers everywhere', kubectlArgv.leftovers(c, null), ['kubectl', 'get', 'pods', '--all-namespaces', '--selector=app.kubernetes.io/managed-by=sneakpeek,sneakpeek.io/run', '--output=json']],
  ])('%s', (_l, argv, want) => {
    expect(argv).toEqual(want);
  });
});

const at = '2026-11-30T10:00:00Z';
const cond = (type: string, status: string, extra = {}) => ({ type, status, lastProbeTime: null, lastTransitionTime: at, ...extra });
const pod = (status: object, metadata: object = {}) => ({ metadata: { name: 'sneakpeek-abcd-1', ...metadata }, spec: { nodeName: 'node-a' }, status });
const container = (state: object) => ({ name: 'sneakpeek', state, ready: false, restartCount: 0, image: 'busybox:1.36' });

describe('podProgress: on its way to Running, or why it will not get there', () => {
  it.each([
    ['just created (no kubelet yet)', pod({ phase: 'Pending', qosClass: 'BestEffort' }), { state: 'waiting', why: 'Pending', silent: true }],
    ['container being created', pod({ phase: 'Pending', conditions: [cond('PodScheduled', 'True')], containerStatuses: [container({ waiting: { reason: 'ContainerCreating' } })] }),
      { state: 'waiting', why: 'ContainerCreating', silent: false }],
    ['running', pod({ phase: 'Running', containerStatuses: [container({ running: { startedAt: at } })] }), { state: 'running' }],
    ['running phase, container not yet', pod({ phase: 'Running', conditions: [cond('Ready', 'False')], containerStatuses: [container({ waiting: { reason: 'ContainerCreating' } })] }),
      { state: 'waiting', why: 'ContainerCreating', silent: false }],
    ['image pull failed', pod({ phase: 'Pending', conditions: [cond('PodScheduled', 'True')], containerStatuses: [container({ waiting: { reason: 'ErrImagePull', message: 'rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/library/busybox:x"' } })] }),
      { state: 'failed', why: 'ErrImagePull: rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/library/busybox:x"' }],
    ['image pull back-off', pod({ phase: 'Pending', containerStatuses: [container({ waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "busybox:x"' } })] }),
      { state: 'failed', why: 'ImagePullBackOff: Back-off pulling image "busybox:x"' }],
    ['no such pull secret', pod({ phase: 'Pending', containerStatuses: [container({ waiting: { reason: 'CreateContainerConfigError', message: 'secret "regcred" not found' } })] }),
      { state: 'failed', why: 'CreateContainerConfigError: secret "regcred" not found' }],
    ['rejected by the kubelet', pod({ phase: 'Failed', reason: 'OutOfcpu', message: "Pod was rejected: Node didn't have enough resource: cpu" }),
      { state: 'failed', why: "pod Failed: OutOfcpu: Pod was rejected: Node didn't have enough resource: cpu" }],
    ['past its deadline', pod({ phase: 'Failed', reason: 'DeadlineExceeded', message: 'Pod was active on the node longer than the specified deadline' }),
      { state: 'failed', why: 'pod Failed: DeadlineExceeded: Pod was active on the node longer than the specified deadline' }],
    ['its sleep ended', pod({ phase: 'Succeeded', containerStatuses: [container({ terminated: { exitCode: 0, reason: 'Completed' } })] }),
      { state: 'failed', why: 'pod Succeeded: Completed' }],
    ['container exited, pod not yet marked', pod({ phase: 'Running', containerStatuses: [container({ terminated: { exitCode: 127, reason: 'Error' } })] }),
      { state: 'failed', why: 'container ended: Error: exit code 127' }],
    ['unschedulable', pod({ phase: 'Pending', conditions: [cond('PodScheduled', 'False', { reason: 'Unschedulable', message: '0/3 nodes are available: 3 node(s) didn\'t match Pod\'s node affinity/selector.' })] }),
      { state: 'failed', why: 'Unschedulable: 0/3 nodes are available: 3 node(s) didn\'t match Pod\'s node affinity/selector.' }],
    ['being deleted', pod({ phase: 'Running', containerStatuses: [container({ running: {} })] }, { deletionTimestamp: at }), { state: 'failed', why: 'the pod is being deleted' }],
    ['not an object', 'nonsense', { state: 'waiting', why: 'no status', silent: true }],
  ] as const)('%s', (_l, p, want) => {
    expect(podProgress(p)).toEqual(want);
  });
});

describe('nodeProblem', () => {
  const node = (conditions: object[]) => ({ metadata: { name: 'node-b' }, status: { conditions } });
  it.each([
    ['Ready', node([cond('MemoryPressure', 'False'), cond('Ready', 'True', { reason: 'KubeletReady' })]), undefined],
    ['kubelet gone', node([cond('Ready', 'Unknown', { reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.' })]),
      'node node-b is not Ready (NodeStatusUnknown: Kubelet stopped posting node status.)'],
    ['NotReady without words', node([cond('Ready', 'False')]), 'node node-b is not Ready (Ready=False)'],
    ['no Ready condition', node([]), 'node node-b is not Ready (no Ready condition)'],
  ] as const)('%s', (_l, n, want) => {
    expect(nodeProblem(n)).toBe(want);
  });
});

describe('managedPods: what --cleanup finds', () => {
  it('keeps only sneakpeek pods; says which are Terminating and which no kubelet ever ran', () => {
    const labels = { 'app.kubernetes.io/managed-by': 'sneakpeek', 'sneakpeek.io/run': 'abcd' };
    const list = {
      kind: 'PodList',
      items: [
        { metadata: { name: 'sneakpeek-abcd-1', namespace: 'default', labels }, spec: { nodeName: 'node-a' }, status: { phase: 'Running', conditions: [cond('Ready', 'True')], containerStatuses: [container({ running: {} })] } },
        { metadata: { name: 'sneakpeek-abcd-2', namespace: 'ops', labels }, spec: { nodeName: 'node-dead' }, status: { phase: 'Pending', qosClass: 'BestEffort' } },
        { metadata: { name: 'sneakpeek-abcd-3', namespace: 'ops', labels, deletionTimestamp: at }, spec: { nodeName: 'node-dead' }, status: { phase: 'Pending' } },
        { metadata: { name: 'web-0', namespace: 'default', labels: { app: 'web' } }, spec: { nodeName: 'node-a' }, status: { phase: 'Running' } },
        // other tools' pods that carry the same or similar labels: never ours to delete
        { metadata: { name: 'helm-thing', namespace: 'default', labels: { 'app.kubernetes.io/managed-by': 'sneakpeek' } }, spec: { nodeName: 'node-a' }, status: { phase: 'Running' } },
        { metadata: { name: 'sneakpeek-web-0', namespace: 'default', labels: { 'app.kubernetes.io/managed-by': 'sneakpeek', 'sneakpeek.io/run': 'web' } }, spec: { nodeName: 'node-a' }, status: { phase: 'Running' } },
        { metadata: { name: 'sneakpeek-wxyz-1', namespace: 'default', labels } }, // another run's name under this run's label
        { metadata: { name: 'sneakpeek-abcd-1-x', namespace: 'default', labels }, status: { phase: 'Running' } },
        { metadata: { name: 'sneakpeek-abcd-1', namespace: 'tools', labels: { 'app.kubernetes.io/managed-by': 'sneakpeek-operator', 'sneakpeek.io/run': 'abcd' } }, status: { phase: 'Running' } },
        'junk',
      ],
    };
    expect(managedPods(list)).toEqual([
      { namespace: 'default', name: 'sneakpeek-abcd-1', node: 'node-a', phase: 'Running', terminating: false, orphaned: false },
      { namespace: 'ops', name: 'sneakpeek-abcd-2', node: 'node-dead', phase: 'Pending', terminating: false, orphaned: true },
      { namespace: 'ops', name: 'sneakpeek-abcd-3', node: 'node-dead', phase: 'Pending', terminating: true, orphaned: false },
    ]);
    expect(managedPods({})).toEqual([]);
  });
});

describe('node names and the transport', () => {
  it.each(['node-a', 'ip-10-0-0-3.ec2.internal', '10.0.0.3', 'gke-pool-1-abcd', 'a'])('a node name: %s', (n) => {
    expect(checkNodeName(n)).toBe(n);
  });
  it.each(['Node-A', 'node_a', '-a', 'a..b', '', 'a b', '$(id)', 'x'.repeat(254), 'fd00::3'])('not a node name: %j', (n) => {
    expect(() => checkNodeName(n)).toThrow(/invalid node name/);
  });
  it('-a is an address for ssh, a node name for kubectl', () => {
    expect(checkNode('fd00::3', 'ssh')).toBe('fd00::3');
    expect(() => checkNode('fd00::3', 'kubectl')).toThrow(/invalid node name/);
    expect(() => checkNode('node_a', 'ssh')).toThrow(/invalid node address/);
  });
  it('only a named node goes through a pod; no -a is this host with either transport', () => {
    expect(viaPod('node-a', kcfg())).toBe(true);
    expect(viaPod(undefined, kcfg())).toBe(false);
    expect(viaPod('node-a', DEFAULTS)).toBe(false);
    expect(transportNote(undefined, kcfg(), 60)).toBe('');
    expect(transportNote('10.0.0.3', DEFAULTS, 60)).toBe('');
    expect(transportNote('node-a', kcfg(), 60)).toBe(
      '# via: a pod on node node-a (namespace default, image busybox:1.36), then kubectl exec -i POD -- nsenter -t 1 -m -u -i -n -p -- timeout -k 5 60 sh -s\n',
    );
  });
  it('forTransport: with kubectl, a container whose pod has no node name is a problem line, not a target', () => {
    const c = (pod: string, nodeName: string): PodContainer => ({ pod, namespace: 'shop', container: 'app', nodeName, nodeIP: '10.0.0.3', runtime: 'docker', id: 'a'.repeat(64), shortId: 'a'.repeat(12) });
    const found = { containers: [c('web-0', 'node-a'), c('web-1', ''), c('web-2', 'Bad_Name')], problems: ['earlier'], skipped: [] };
    expect(forTransport(found, DEFAULTS)).toBe(found);
    expect(forTransport(found, kcfg())).toEqual({
      containers: [found.containers[0]],
      problems: [
        'earlier',
        'pod shop/web-1 container app: no spec.nodeName: transport kubectl reaches nodes by name',
        'pod shop/web-2 container app: invalid spec.nodeName "Bad_Name": transport kubectl reaches nodes by name',
      ],
      skipped: [],
    });
  });
});

describe('config: transport and kubectl.*', () => {
  it.each([
    [{ SNEAKPEEK_TRANSPORT: 'kubectl' }, {}, 'kubectl'],
    [{ SNEAKPEEK_TRANSPORT: 'kubectl' }, { transport: 'ssh' }, 'ssh'],
    [{}, {}, 'ssh'],
  ] as const)('env %j, flags %j → %s', (env, flags, want) => {
    expect(resolveConfig(null, 'config', env, flags).transport).toBe(want);
  });
  it.each([
    ['transport: telnet\n', "config x: 'transport' must be one of ssh, kubectl, got 'telnet'"],
    ['kubectl:\n  namespace: Kube_System\n', "config x: 'kubectl.namespace' must be a namespace name (DNS label: a-z, 0-9, -), got \"Kube_System\""],
    ['kubectl:\n  image: "busybox; rm -rf /"\n', "config x: 'kubectl.image' must be an image reference"],
    ['kubectl:\n  image: -busybox\n', "config x: 'kubectl.image' must be an image reference"],
    ['kubectl:\n  pullSecret: Reg Cred\n', "config x: 'kubectl.pullSecret' must be a secret name"],
    ['kubectl:\n  startTimeout: 0\n', "config x: 'kubectl.startTimeout' must be a positive integer, got 0"],
    ['kubectl:\n  imag: busybox\n', "config x: unknown key 'kubectl.imag'"],
  ])('%j is refused', (text, want) => {
    expect(() => resolveConfig(text, 'config x', {})).toThrow(want);
  });
  it('accepts a registry image with a digest, a pull secret, and null', () => {
    const c = resolveConfig('transport: kubectl\nkubectl:\n  image: registry.example:5000/tools/busybox@sha256:abc\n  pullSecret: reg.cred\n', 'c', {});
    expect(c.kubectl).toEqual({ ...DEFAULTS.kubectl, image: 'registry.example:5000/tools/busybox@sha256:abc', pullSecret: 'reg.cred' });
    expect(resolveConfig('kubectl:\n  pullSecret: null\n', 'c', {}).kubectl.pullSecret).toBeNull();
  });
});

describe('WatchSplitter: kubectl get -w -o json, object by object, however it is chunked', () => {
  // what kubectl prints: each object indented, its closing brace alone on a line
  const objs = [{ metadata: { name: 'a' }, status: { phase: 'Pending', message: 'x\n}\ny {' } }, { metadata: { name: 'a' }, status: { phase: 'Running' } }];
  const text = objs.map((o) => `${JSON.stringify(o, null, 4)}\n`).join('');
  it.each([1, 2, 7, 64, text.length])('chunks of %i characters', (n) => {
    const got: unknown[] = [];
    const w = new WatchSplitter();
    for (let i = 0; i < text.length; i += n) w.push(text.slice(i, i + n), (d) => got.push(d));
    expect(got).toEqual(objs);
  });
  it('holds a partial object back', () => {
    const got: unknown[] = [];
    new WatchSplitter().push(text.slice(0, text.length - 3), (d) => got.push(d));
    expect(got).toEqual([objs[0]]);
  });
});
