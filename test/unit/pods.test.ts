import { describe, expect, it } from 'vitest';
import { checkClusterArgs, engineFor, kubectlArgv, podTargets } from '../../lib/cluster.ts';
import { DEFAULTS } from '../../lib/config.ts';
import {
  checkPodExclusion,
  containerJson,
  containerLine,
  matchesSelector,
  parsePodsJson,
  parseSelector,
  podContainers,
  podItems,
} from '../../lib/pods.ts';

const ID = (c: string) => c.repeat(64);
type Obj = Record<string, unknown>;

interface C {
  name: string;
  id?: string;
  ready?: boolean;
  started?: boolean;
  running?: boolean;
}

function pod(name: string, cs: C[], extra: { ns?: string; hostIP?: string | null; labels?: Obj; init?: Obj[]; initStatuses?: C[]; ephemeral?: C[] } = {}): Obj {
  const status = (c: C) => ({
    name: c.name,
    ready: c.ready ?? true,
    ...(c.started === undefined ? {} : { started: c.started }),
    state: c.running === false ? { terminated: { exitCode: 0 } } : { running: { startedAt: '2026-11-01T00:00:00Z' } },
    ...(c.id === undefined ? {} : { containerID: c.id }),
  });
  return {
    metadata: { name, namespace: extra.ns ?? 'default', labels: extra.labels ?? {} },
    spec: { nodeName: 'node-a', containers: cs.map((c) => ({ name: c.name })), initContainers: extra.init ?? [] },
    status: {
      ...(extra.hostIP === null ? {} : { hostIP: extra.hostIP ?? '10.0.0.3' }),
      containerStatuses: cs.map(status),
      initContainerStatuses: (extra.initStatuses ?? []).map(status),
      ephemeralContainerStatuses: (extra.ephemeral ?? []).map(status),
    },
  };
}

const lines = (pods: Obj[], f = {}) => podContainers(pods, f).containers.map(containerLine);

describe('podContainers: which containers are listed', () => {
  it.each([
    ['ready and started', [pod('p', [{ name: 'a', id: `docker://${ID('a')}`, started: true }])], {}, ['10.0.0.3,aaaaaaaaaaaa']],
    ['not ready', [pod('p', [{ name: 'a', id: `docker://${ID('a')}`, ready: false, started: true }])], {}, []],
    ['not started', [pod('p', [{ name: 'a', id: `docker://${ID('a')}`, started: false }])], {}, []],
    ['started missing (old cluster): running counts', [pod('p', [{ name: 'a', id: `docker://${ID('a')}` }])], {}, ['10.0.0.3,aaaaaaaaaaaa']],
    ['--running: not ready but running', [pod('p', [{ name: 'a', id: `docker://${ID('a')}`, ready: false, started: false }])], { running: true }, ['10.0.0.3,aaaaaaaaaaaa']],
    ['--running: terminated is not running', [pod('p', [{ name: 'a', id: `docker://${ID('a')}`, running: false }])], { running: true }, []],
    ['containerd prefix', [pod('p', [{ name: 'a', id: `containerd://${ID('b')}`, started: true }])], {}, ['10.0.0.3,bbbbbbbbbbbb']],
    ['cri-o prefix', [pod('p', [{ name: 'a', id: `cri-o://${ID('c')}`, started: true }])], {}, ['10.0.0.3,cccccccccccc']],
    ['no hostIP (pending) is skipped', [pod('p', [{ name: 'a', id: `docker://${ID('a')}`, started: true }], { hostIP: null })], {}, []],
    ['no containerID yet', [pod('p', [{ name: 'a', started: true }])], {}, []],
    ['-e POD', [pod('p', [{ name: 'a', id: `docker://${ID('a')}` }]), pod('q', [{ name: 'a', id: `docker://${ID('b')}` }])], { exclude: ['p'] }, ['10.0.0.3,bbbbbbbbbbbb']],
    ['-e NS/POD only in that namespace', [pod('p', [{ name: 'a', id: `docker://${ID('a')}` }], { ns: 'x' }), pod('p', [{ name: 'a', id: `docker://${ID('b')}` }], { ns: 'y' })], { exclude: ['x/p'] }, ['10.0.0.3,bbbbbbbbbbbb']],
    ['-e is a full name, not a prefix', [pod('web-1', [{ name: 'a', id: `docker://${ID('a')}` }])], { exclude: ['web'] }, ['10.0.0.3,aaaaaaaaaaaa']],
    ['namespace filter (pods file)', [pod('p', [{ name: 'a', id: `docker://${ID('a')}` }], { ns: 'x' }), pod('q', [{ name: 'a', id: `docker://${ID('b')}` }], { ns: 'y' })], { namespace: 'y' }, ['10.0.0.3,bbbbbbbbbbbb']],
    ['selector filter (pods file)', [pod('p', [{ name: 'a', id: `docker://${ID('a')}` }], { labels: { app: 'web' } }), pod('q', [{ name: 'a', id: `docker://${ID('b')}` }], { labels: { app: 'db' } })], { selector: 'app=db' }, ['10.0.0.3,bbbbbbbbbbbb']],
    ['classic init container (exited) never listed', [pod('p', [{ name: 'a', id: `docker://${ID('a')}` }], { init: [{ name: 'init' }], initStatuses: [{ name: 'init', id: `docker://${ID('i')}`, ready: false, started: false, running: false }] })], {}, ['10.0.0.3,aaaaaaaaaaaa']],
    ['sidecar init container (restartPolicy Always) listed', [pod('p', [{ name: 'a', id: `docker://${ID('a')}` }], { init: [{ name: 'side', restartPolicy: 'Always' }], initStatuses: [{ name: 'side', id: `docker://${ID('s')}`, started: true }] })], {}, ['10.0.0.3,aaaaaaaaaaaa', '10.0.0.3,ssssssssssss']],
    ['ephemeral container never listed', [pod('p', [{ name: 'a', id: `docker://${ID('a')}` }], { ephemeral: [{ name: 'debugger', id: `docker://${ID('e')}`, ready: true, started: true }] })], { running: true }, ['10.0.0.3,aaaaaaaaaaaa']],
  ])('%s', (_, pods, filter, want) => {
    expect(lines(pods as Obj[], filter)).toEqual(want);
  });

  it('matches statuses to containers by name: one line per container, no cross product', () => {
    const p = pod('multi', [
      { name: 'a', id: `docker://${ID('a')}` },
      { name: 'b', id: `docker://${ID('b')}` },
      { name: 'c', id: `docker://${ID('c')}`, ready: false },
    ]);
    // Statuses in another order than the spec: the name decides, not the position.
    (p.status as Obj).containerStatuses = ((p.status as Obj).containerStatuses as Obj[]).reverse();
    const r = podContainers([p]);
    expect(r.containers.map((c) => [c.container, c.shortId])).toEqual([
      ['a', 'aaaaaaaaaaaa'],
      ['b', 'bbbbbbbbbbbb'],
    ]);
    expect(r.skipped).toContain('pod default/multi container c: not ready');
  });

  it('carries everything --json needs', () => {
    const [c] = podContainers([pod('web-0', [{ name: 'app', id: `containerd://${ID('f')}` }], { ns: 'shop' })]).containers;
    expect(JSON.parse(containerJson(c!))).toEqual({
      pod: 'web-0', namespace: 'shop', container: 'app', node: 'node-a', nodeIP: '10.0.0.3', runtime: 'containerd', id: ID('f'),
    });
  });

  it.each([
    ['hostIP with a command', { hostIP: '10.0.0.3; touch /tmp/x' }, /invalid hostIP "10.0.0.3; touch \/tmp\/x"/],
    ['hostIP that is an ssh option', { hostIP: '-oProxyCommand=x' }, /invalid hostIP/],
    // ssh (getaddrinfo → inet_aton) would resolve these, or look them up as host names.
    ['hostIP 1 (inet_aton reads 0.0.0.1)', { hostIP: '1' }, /invalid hostIP "1": not an IP address/],
    ['hostIP out of range', { hostIP: '999.999.999.999' }, /invalid hostIP "999\.999\.999\.999": not an IP address/],
    ['hostIP ::: (not IPv6)', { hostIP: ':::' }, /invalid hostIP ":::": not an IP address/],
    ['hostIP with leading zeros (octal to inet_aton)', { hostIP: '010.0.0.3' }, /invalid hostIP/],
    ['hostIP short form 127.1', { hostIP: '127.1' }, /invalid hostIP/],
    ['hostIP that is a host name', { hostIP: 'node-a.example' }, /invalid hostIP "node-a\.example": not an IP address/],
    ['hostIP in brackets', { hostIP: '[fd00::3]' }, /invalid hostIP/],
    ['pod name with $(...)', { name: 'p$(touch x)' }, /invalid pod or namespace name/],
    ['container id with backticks', { id: 'docker://abc`touch x`defghijkl' }, /invalid containerID/],
    ['container id without runtime', { id: ID('a') }, /invalid containerID/],
    ['container name with a newline', { cname: 'a\nb' }, /invalid container name "a\\nb"/],
  ])('refuses %s as a problem, keeps the others', (_, bad: { hostIP?: string; name?: string; id?: string; cname?: string }, msg) => {
    const badPod = pod(bad.name ?? 'bad', [{ name: bad.cname ?? 'a', id: bad.id ?? `docker://${ID('a')}` }], { hostIP: bad.hostIP });
    const good = pod('good', [{ name: 'a', id: `docker://${ID('b')}` }]);
    const r = podContainers([badPod, good]);
    expect(r.containers.map(containerLine)).toEqual(['10.0.0.3,bbbbbbbbbbbb']);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatch(msg);
    expect(r.problems[0]).not.toContain('\n');
  });
});

describe('one pod list, one target per container', () => {
  it('the same container twice (same node, same id) is one container, with a note for -v', () => {
    const a = pod('web-0', [{ name: 'app', id: `docker://${ID('a')}` }]);
    const r = podContainers([a, structuredClone(a), pod('web-1', [{ name: 'app', id: `docker://${ID('b')}` }])]);
    expect(r.containers.map(containerLine)).toEqual(['10.0.0.3,aaaaaaaaaaaa', '10.0.0.3,bbbbbbbbbbbb']);
    expect(r.skipped).toEqual(['pod default/web-0 container app: listed twice (the same container as pod default/web-0 container app, node 10.0.0.3)']);
    expect(r.problems).toEqual([]);
  });

  it('the same id on two nodes is two containers', () => {
    const r = podContainers([
      pod('a', [{ name: 'app', id: `docker://${ID('a')}` }], { hostIP: '10.0.0.3' }),
      pod('b', [{ name: 'app', id: `docker://${ID('a')}` }], { hostIP: '10.0.0.4' }),
    ]);
    expect(r.containers.map(containerLine)).toEqual(['10.0.0.3,aaaaaaaaaaaa', '10.0.0.4,aaaaaaaaaaaa']);
  });

  it.each([
    ['a number', 42, 'pod web-0: invalid namespace 42: expected a string, got a number'],
    ['null', null, 'pod web-0: invalid namespace null: expected a string, got null'],
    ['an object', { name: 'shop' }, 'pod web-0: invalid namespace {"name":"shop"}: expected a string, got an object'],
    ['a list', ['shop'], 'pod web-0: invalid namespace ["shop"]: expected a string, got a list'],
    ['a boolean', true, 'pod web-0: invalid namespace true: expected a string, got a boolean'],
  ])('a namespace that is %s is a problem for that pod, not `default`', (_l, ns, msg) => {
    const bad = pod('web-0', [{ name: 'app', id: `docker://${ID('a')}` }]);
    (bad.metadata as Obj).namespace = ns;
    const r = podContainers([bad, pod('good', [{ name: 'app', id: `docker://${ID('b')}` }])], { namespace: 'default' });
    expect(r.problems).toEqual([msg]);
    expect(r.containers.map(containerLine)).toEqual(['10.0.0.3,bbbbbbbbbbbb']);
  });

  it('a missing namespace is `default` (a hand-written file)', () => {
    const p = pod('web-0', [{ name: 'app', id: `docker://${ID('a')}` }]);
    delete (p.metadata as Obj).namespace;
    expect(podContainers([p]).containers.map((c) => c.namespace)).toEqual(['default']);
  });

  it.each([
    ['Service', { kind: 'Service', metadata: { name: 'svc', namespace: 'default' }, spec: {} }, 'Service default/svc: not a Pod'],
    ['Node (no namespace)', { kind: 'Node', metadata: { name: 'node-a' }, status: { addresses: [] } }, 'Node node-a: not a Pod'],
    ['odd kind and name', { kind: 'a b', metadata: { name: 'x;y', namespace: 'default' } }, '"a b" default/"x;y": not a Pod'],
  ])('a %s in a List is skipped as not a Pod, not as a problem', (_l, item, note) => {
    const r = podContainers([item as Obj, { kind: 'Pod', ...pod('web-0', [{ name: 'app', id: `docker://${ID('a')}` }]) }]);
    expect(r.skipped).toEqual([note]);
    expect(r.problems).toEqual([]);
    expect(r.containers.map(containerLine)).toEqual(['10.0.0.3,aaaaaaaaaaaa']);
  });
});

describe('hostIP: an IP address, v4 or v6', () => {
  it.each(['10.0.0.3', '192.168.255.254', 'fd00::3', '2001:db8::1', '::ffff:10.0.0.3', 'fe80::1%eth0'])('accepts %s', (ip) => {
    const r = podContainers([pod('p', [{ name: 'a', id: `docker://${ID('a')}` }], { hostIP: ip })]);
    expect(r.problems).toEqual([]);
    expect(r.containers.map((c) => c.nodeIP)).toEqual([ip]);
  });
});

describe('pod list documents', () => {
  it.each([
    ['PodList', '{"kind":"PodList","items":[{"metadata":{"name":"a"}}]}', 1],
    ['List', '{"kind":"List","items":[]}', 0],
    ['one Pod', '{"kind":"Pod","metadata":{"name":"a"}}', 1],
  ])('%s', (_, text, n) => {
    expect(parsePodsJson(text)).toHaveLength(n);
  });

  it.each([
    ['', /empty/],
    ['not json', /not JSON/],
    ['[1,2]', /not a pod list/],
    ['{"kind":"NodeList"}', /no .items/],
  ])('refuses %j', (text, msg) => {
    expect(() => parsePodsJson(text, 'f.json')).toThrow(msg);
  });

  it('podItems of a non-object', () => expect(() => podItems(null)).toThrow(/not a pod list/));
});

describe('label selectors', () => {
  it.each([
    ['app=web', { app: 'web' }, true],
    ['app==web', { app: 'web' }, true],
    ['app!=web', { app: 'web' }, false],
    ['app!=web', {}, true],
    ['app', { app: 'x' }, true],
    ['!app', { app: 'x' }, false],
    ['app in (web,db)', { app: 'db' }, true],
    ['app notin (web, db)', { app: 'db' }, false],
    ['app=web,tier=front', { app: 'web', tier: 'back' }, false],
  ])('%s on %j → %s', (sel, labels, want) => {
    expect(matchesSelector(labels, parseSelector(sel))).toBe(want);
  });
});

describe('cluster args', () => {
  it.each([
    [{}, ['kubectl', 'get', 'pods', '--output=json']],
    [{ namespace: 'kube-system' }, ['kubectl', 'get', 'pods', '--output=json', '--namespace=kube-system']],
    [{ allNamespaces: true, selector: 'app=web' }, ['kubectl', 'get', 'pods', '--output=json', '--all-namespaces', '--selector=app=web']],
  ])('kubectl argv for %j', (a, want) => {
    expect(kubectlArgv(DEFAULTS, a)).toEqual(want);
  });

  it.each([
    [{ namespace: 'a;touch /tmp/x' }, /invalid namespace/],
    [{ namespace: '-A' }, /invalid namespace/],
    [{ namespace: 'x', allNamespaces: true }, /exclude each other/],
    [{ selector: 'app=$(id)' }, /invalid label selector/],
    [{ selector: '--all' }, /invalid label selector/],
    [{ exclude: ['web`id`'] }, /invalid pod name/],
    [{ exclude: ['ns/a\nb'] }, /invalid pod name/],
    [{ exclude: ['-rf'] }, /invalid pod name/],
  ])('refuses %j', (a, msg) => {
    expect(() => checkClusterArgs(a)).toThrow(msg);
  });

  it('accepts NS/POD exclusions', () => expect(checkPodExclusion('kube-system/coredns-5d78c9869d-abcde')).toBeTruthy());

  it.each([
    ['docker', false, 'docker'],
    ['containerd', false, 'containerd'],
    ['cri-o', false, 'crictl'],
    ['unknown', false, 'docker'],
    ['containerd', true, 'docker'],
  ])('runtime %s (forced %s) → engine %s', (runtime, forced, want) => {
    expect(engineFor(runtime, DEFAULTS, forced)).toBe(want);
  });

  it('targets are labelled NODE,ID12 and carry the pod', () => {
    const { containers } = podContainers([pod('web-0', [{ name: 'app', id: `containerd://${ID('f')}` }])]);
    expect(podTargets(containers, DEFAULTS, false)).toEqual([
      {
        node: '10.0.0.3', name: ID('f'), key: 0, label: '10.0.0.3,ffffffffffff', engine: 'containerd',
        meta: { pod: 'web-0', namespace: 'default', container: 'app', node: 'node-a', nodeIP: '10.0.0.3', id: ID('f') },
      },
    ]);
  });
});
