// What a saved pod list (--pods-file) can carry that it should not: get_all_containers and
// sneakpeek as child processes, on files written here.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runTool, runToolAsync } from '../helpers/cli.ts';
import { cleanupContainers, docker, dockerDiffSorted, ensureBusyboxImage, exec, runContainer, sortBytes } from '../helpers/docker.ts';
import { pod, startKube } from '../helpers/kube.ts';
import { commandWorks, dockerUp, isRoot, missing } from '../helpers/prereq.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-reliability-input-pods-'));
afterAll(() => {
  cleanupContainers();
  rmSync(dir, { recursive: true, force: true });
});

const ID = (c: string) => c.repeat(64);
const podsFile = (name: string, items: unknown[]) => {
  const f = path.join(dir, name);
  writeFileSync(f, JSON.stringify({ kind: 'List', apiVersion: 'v1', items }));
  return f;
};

describe('hostIP must be an IP address', () => {
  it('1, 999.999.999.999, ::: and a host name are one problem line each; the good pod is listed; exit 1', () => {
    const f = podsFile('hostips.json', [
      pod({ name: 'one', hostIP: '1', containers: [{ name: 'a', id: ID('1') }] }),
      pod({ name: 'range', hostIP: '999.999.999.999', containers: [{ name: 'a', id: ID('2') }] }),
      pod({ name: 'colons', hostIP: ':::', containers: [{ name: 'a', id: ID('3') }] }),
      pod({ name: 'named', hostIP: 'node-a.example', containers: [{ name: 'a', id: ID('4') }] }),
      pod({ name: 'good', hostIP: '10.0.0.3', containers: [{ name: 'a', id: ID('5') }] }),
      pod({ name: 'good6', hostIP: 'fd00::3', containers: [{ name: 'a', id: ID('6') }] }),
    ]);
    const r = runTool('get_all_containers', ['--pods-file', f]);
    expect(r.stdout).toBe('10.0.0.3,555555555555\nfd00::3,666666666666\n');
    expect(r.stderr.split('\n').filter(Boolean).sort()).toEqual([
      'get_all_containers: pod default/colons: invalid hostIP ":::": not an IP address',
      'get_all_containers: pod default/named: invalid hostIP "node-a.example": not an IP address',
      'get_all_containers: pod default/one: invalid hostIP "1": not an IP address',
      'get_all_containers: pod default/range: invalid hostIP "999.999.999.999": not an IP address',
    ]);
    expect(r.code).toBe(1);
  });

  it('sneakpeek never hands such a hostIP to ssh (--dry-run shows only the good node)', () => {
    const f = podsFile('hostips-sneakpeek.json', [
      pod({ name: 'one', hostIP: '1', containers: [{ name: 'a', id: ID('1') }] }),
      pod({ name: 'good', hostIP: '10.0.0.3', containers: [{ name: 'a', id: ID('5') }] }),
    ]);
    const r = runTool('sneakpeek', ['-t', 'files', '--pods-file', f, '--dry-run']);
    expect(r.stdout.match(/^# node: .*$/gm)).toEqual(['# node: 10.0.0.3']);
    expect(r.stderr).toContain('sneakpeek: pod default/one: invalid hostIP "1": not an IP address');
  });
});

describe('one container listed twice is one target', () => {
  const twice = () => {
    const p = pod({ name: 'web-0', namespace: 'shop', hostIP: '10.0.0.3', containers: [{ name: 'app', id: ID('a') }] });
    return [p, structuredClone(p), pod({ name: 'db-0', namespace: 'shop', hostIP: '10.0.0.3', containers: [{ name: 'db', id: ID('b') }] })];
  };

  it('in a pods file: listed once, -v says why', () => {
    const r = runTool('get_all_containers', ['--pods-file', podsFile('twice.json', twice()), '-v']);
    expect(r.stdout).toBe('10.0.0.3,aaaaaaaaaaaa\n10.0.0.3,bbbbbbbbbbbb\n');
    expect(r.stderr).toContain('get_all_containers: skipped pod shop/web-0 container app: listed twice (the same container as pod shop/web-0 container app, node 10.0.0.3)');
    expect(r.code).toBe(0);
  });

  it.skipIf(missing({ kubectl: () => commandWorks('kubectl', ['version', '--client']) }))('in the kubectl answer (the real kubectl, a recorded API): listed once', async () => {
    const kube = await startKube({ pods: twice(), namespace: 'shop' });
    try {
      const r = await runToolAsync('get_all_containers', [], { env: kube.env });
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('10.0.0.3,aaaaaaaaaaaa\n10.0.0.3,bbbbbbbbbbbb\n');
      expect(kube.requests.some((q) => q.startsWith('/api/v1/namespaces/shop/pods'))).toBe(true);
    } finally {
      await kube.close();
    }
  });

  const noDocker = missing({ root: isRoot, docker: dockerUp });
  it.skipIf(noDocker)('sneakpeek -t files on a real container listed twice: each change printed once', () => {
    const name = `sp-reliability-input-dup-${process.pid}`;
    const id = runContainer(name, ensureBusyboxImage());
    exec(name, 'echo x > /tmp/dup; rm /etc/motd');
    // 127.0.0.1 is this host: the node script runs here, no ssh.
    const p = pod({ name: 'web-0', hostIP: '127.0.0.1', containers: [{ name: 'app', id }] });
    const r = runTool('sneakpeek', ['-t', 'files', '--chroot', '--pods-file', podsFile('twice-real.json', [p, structuredClone(p)]), '-v']);
    expect(r.code).toBe(0);
    const label = `127.0.0.1,${id.slice(0, 12)} `;
    const lines = r.stdout.split('\n').filter(Boolean);
    expect(lines.every((l) => l.startsWith(label))).toBe(true);
    expect(sortBytes(lines.map((l) => l.slice(label.length)))).toEqual(dockerDiffSorted(name));
    expect(r.stderr).toMatch(/skipped pod default\/web-0 container app: listed twice/);
    expect(r.stderr).toMatch(/^1 ok, 0 failed$/m);
    docker('rm', '-f', name);
  });
});

describe('a namespace that is not a string', () => {
  it('is one problem line for that pod, never `default`; exit 1', () => {
    const bad = pod({ name: 'web-0', hostIP: '10.0.0.3', containers: [{ name: 'app', id: ID('a') }] });
    (bad.metadata as Record<string, unknown>).namespace = 42;
    const good = pod({ name: 'db-0', hostIP: '10.0.0.3', containers: [{ name: 'db', id: ID('b') }] });
    const r = runTool('get_all_containers', ['--pods-file', podsFile('ns42.json', [bad, good]), '--namespace', 'default']);
    expect(r.stdout).toBe('10.0.0.3,bbbbbbbbbbbb\n');
    expect(r.stderr).toBe('get_all_containers: pod web-0: invalid namespace 42: expected a string, got a number\n');
    expect(r.code).toBe(1);
  });
});

describe('a List with other kinds (kubectl get pods,svc -o json)', () => {
  it('a Service is skipped as not a Pod (with -v), not a problem; exit 0', () => {
    const svc = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'svc', namespace: 'default' }, spec: { clusterIP: '10.96.0.10', ports: [{ port: 80 }] }, status: { loadBalancer: {} } };
    const f = podsFile('pods-svc.json', [pod({ name: 'web-0', hostIP: '10.0.0.3', containers: [{ name: 'app', id: ID('a') }] }), svc]);
    const r = runTool('get_all_containers', ['--pods-file', f, '-v']);
    expect(r.stdout).toBe('10.0.0.3,aaaaaaaaaaaa\n');
    expect(r.stderr).toBe('get_all_containers: skipped Service default/svc: not a Pod\nget_all_containers: 1 containers\n');
    expect(r.code).toBe(0);
  });
});

describe('--pods-file without --namespace or -A', () => {
  it('lists every pod of the file (what you chose to save), and runs no kubectl', () => {
    const f = podsFile('two-ns.json', [
      pod({ name: 'web-0', namespace: 'shop', hostIP: '10.0.0.3', containers: [{ name: 'app', id: ID('a') }] }),
      pod({ name: 'db-0', namespace: 'data', hostIP: '10.0.0.4', containers: [{ name: 'db', id: ID('b') }] }),
    ]);
    // A kubectl that would leave a mark: it must not run.
    const mark = path.join(dir, 'kubectl-ran');
    const kubectl = path.join(dir, 'kubectl');
    writeFileSync(kubectl, `#!/bin/sh\ntouch ${mark}\nexit 1\n`, { mode: 0o755 });
    const cfg = path.join(dir, 'kubectl.yaml');
    writeFileSync(cfg, `paths:\n  kubectl: ${kubectl}\n`);
    const r = runTool('get_all_containers', ['--pods-file', f], { env: { SNEAKPEEK_CONFIG: cfg } });
    expect(r.stdout).toBe('10.0.0.3,aaaaaaaaaaaa\n10.0.0.4,bbbbbbbbbbbb\n');
    expect(r.code).toBe(0);
    expect(existsSync(mark)).toBe(false);
    expect(runTool('get_all_containers', ['--help']).stdout).toMatch(/with\s+--pods-file, every pod in the file/);
  });
});
