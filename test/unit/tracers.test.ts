import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mapNameOf } from '../../lib/bpfmap.ts';
import { DEFAULTS, parseConfig, type Config } from '../../lib/config.ts';
import { readProgram } from '../../lib/io/node-files.ts';
import {
  backendArgv, checkTracerConfig, launcher, mapFileOf, programPath, programStep, setupStep, teardownStep, tracerSpec, type Tool,
} from '../../lib/tracers.ts';
import { flat, runSteps } from '../helpers/node-sh.ts';
import { collectUnitRecords, renderTemplate } from '../../lib/units.ts';
import { setupRow, setupScript, teardownRow, teardownScript } from '../../scripts/sneakpeek/monitor.ts';
import { ROOT } from '../helpers/cli.ts';

const cfgOf = (yaml: string): Config => parseConfig(yaml, 'test config');
const TOOLS: Tool[] = ['execsnoop', 'tcptracer'];
const tmp = mkdtempSync(path.join(os.tmpdir(), 'sp-tracers-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.each(TOOLS)('%s@.service', (tool) => {
  const text = renderTemplate(DEFAULTS, tracerSpec(DEFAULTS, tool));

  it('the shipped systemd file is the template rendered from the default config', () => {
    expect(readFileSync(path.join(ROOT, `systemd/${tool}@.service`), 'utf8')).toBe(text);
  });

  it.each([
    ['reads the instance env file', `\nEnvironmentFile=/etc/sneakpeek/${tool}/%i.env\n`],
    ['bcc: BCC with --mntnsmap <map>', `bcc) exec /usr/sbin/${tool}-bpfcc ${tool === 'execsnoop' ? "'-T' '-U' '-x'" : "'-t'"} '--mntnsmap' \\"$$SNEAKPEEK_MNTNS_MAP\\" ;;`],
    ['bpftrace: the installed program and the inode', `bpftrace) exec /usr/bin/bpftrace /etc/sneakpeek/tracers/${tool}.bt \\"$$SNEAKPEEK_MNTNS_INODE\\" ;;`],
    ['names its container and namespace first in the log', '\nExecStartPre=/bin/echo "sneakpeek '],
    ['restarts on failure', '\nRestart=on-failure\n'],
    ['memlock for kernels that still charge it', '\nLimitMEMLOCK=infinity\n'],
    ['managed-by header', '# managed by sneakpeek'],
  ])('%s', (_what, piece) => {
    expect(text).toContain(piece);
  });

  it('ExecStart is `/bin/sh -c` and the launcher, escaped once for systemd ($$, \\", \\\\)', () => {
    const line = /^ExecStart=\/bin\/sh -c "(.*)"$/m.exec(text)?.[1];
    expect(line?.replace(/\\(["\\])/g, '$1').replace(/\$\$/g, '$')).toBe(launcher(DEFAULTS, tool));
  });

  it('with log.target: file it appends to <log.dir>/<tool>-<ID>.log', () => {
    const cfg = cfgOf('log: {target: file, dir: /var/log/sp}');
    expect(renderTemplate(cfg, tracerSpec(cfg, tool))).toContain(`\nStandardOutput=append:/var/log/sp/${tool}-%i.log\n`);
  });
});

describe('the launcher runs exactly the backend command (a real sh, binaries replaced by argv printers)', () => {
  const printer = path.join(tmp, 'argv');
  writeFileSync(printer, '#!/bin/sh\nprintf "%s\\n" "$0" "$@"\n');
  chmodSync(printer, 0o755);
  const cfg = cfgOf(`paths: {execsnoop: ${printer}, tcptracer: ${printer}, bpftrace: ${printer}}\nenvDir: /etc/sp-test`);
  const env = (backend: string) => ({ PATH: '/usr/bin:/bin', SNEAKPEEK_BACKEND: backend, SNEAKPEEK_MNTNS_MAP: '/sys/fs/bpf/mnt_ns_0123456789ab', SNEAKPEEK_MNTNS_INODE: '4026532251' });

  it.each(TOOLS.flatMap((t) => (['bcc', 'bpftrace'] as const).map((b) => [t, b] as const)))('%s with %s', (tool, backend) => {
    const r = spawnSync('sh', ['-c', launcher(cfg, tool)], { env: env(backend), encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n').filter(Boolean)).toEqual(backendArgv(cfg, tool, backend, { map: '/sys/fs/bpf/mnt_ns_0123456789ab', inode: '4026532251' }));
  });

  it('exact argv', () => {
    expect(backendArgv(cfg, 'execsnoop', 'bcc', { map: '/m', inode: '7' })).toEqual([printer, '-T', '-U', '-x', '--mntnsmap', '/m']);
    expect(backendArgv(cfg, 'tcptracer', 'bcc', { map: '/m', inode: '7' })).toEqual([printer, '-t', '--mntnsmap', '/m']);
    expect(backendArgv(cfg, 'tcptracer', 'bpftrace', { map: '/m', inode: '7' })).toEqual([printer, '/etc/sp-test/tracers/tcptracer.bt', '7']);
  });

  it.each(['/sys/fs/bpf/a map', '/sys/fs/bpf/$(touch canary)*', ''])('the map %j is one argument, never split, globbed or run', (map) => {
    const r = spawnSync('sh', ['-c', launcher(cfg, 'tcptracer')], { env: { ...env('bcc'), SNEAKPEEK_MNTNS_MAP: map }, encoding: 'utf8', cwd: tmp });
    expect(r.stdout.split('\n').slice(0, -1)).toEqual([printer, '-t', '--mntnsmap', map]);
    expect(existsSync(path.join(tmp, 'canary'))).toBe(false);
  });

  it('an unknown backend in the env file: one line, exit 2, nothing run', () => {
    const r = spawnSync('sh', ['-c', launcher(cfg, 'execsnoop')], { env: env('$(touch canary)'), encoding: 'utf8', cwd: tmp });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe("execsnoop@: unknown SNEAKPEEK_BACKEND '$(touch canary)' (bcc or bpftrace)\n");
  });
});

describe('names and paths', () => {
  it('the node names the map the way mapNameOf does (ns_<ID>: 15 characters)', () => {
    expect(mapFileOf(DEFAULTS, '0123456789ab')).toBe('/sys/fs/bpf/mnt_ns_0123456789ab');
    expect(mapNameOf(mapFileOf(DEFAULTS, '0123456789ab'))).toBe('ns_0123456789ab');
    expect(programPath(cfgOf('envDir: /etc/sp/'), 'tcptracer')).toBe('/etc/sp/tracers/tcptracer.bt');
  });

  // sp_tracer and sp_tracer_stop, run for real with the map and unit functions replaced by
  // stubs that say which map file and name they were given.
  const stubs = `sp_ns() { sp_id=0123456789abcdef0123 sp_ino=7; }
sp_cid() { sp_cid=0123456789ab; }
sp_map() { rec MAP "$1" "$2" "$3" - - -; }
sp_env() { :; }
sp_stop() { :; }
sp_unmap() { rec MAPGONE "$1" "$2" "$3"; }`;
  it.each(['/sys/fs/bpf', '/sys/fs/bpf/', '/sys/fs/bpf/sp,x'])('mapDir %s: setup and teardown on the node name the map as mapFileOf does', (dir) => {
    const cfg = cfgOf(`mapDir: "${dir}"`);
    const id = '0123456789ab';
    const r = runSteps(['sp_tpl_execsnoop=', stubs, setupStep(cfg, 0, 'docker', 'web', 'execsnoop', 'bcc'), teardownStep(cfg, 1, 'docker', 'web', 'execsnoop')], { cfg });
    expect(flat(r.records)).toEqual([
      ['MAP', '0', mapFileOf(cfg, id), 'ns_' + id, '-', '-', '-'],
      ['MAPGONE', '1', mapFileOf(cfg, id), `/etc/sneakpeek/tcptracer/${id}.env`],
    ]);
    expect(() => mapFileOf(cfg, '../x')).toThrow(/instance id/);
  });

  it.each([
    ['a binary path with a space', 'paths: {bpftrace: "/usr/bin/bpf trace"}', 'bpftrace', /paths\.bpftrace/],
    ['a relative BCC path', 'paths: {execsnoop: execsnoop-bpfcc}', 'bcc', /paths\.execsnoop/],
    ['a mapDir with $', 'mapDir: "/sys/fs/bpf/$(x)"', 'bcc', /mapDir/],
    ['an envDir with ..', 'envDir: /etc/../tmp', 'bcc', /envDir/],
    ['a bpftool with ;', 'paths: {bpftool: "bpftool;id"}', 'bcc', /paths\.bpftool/],
  ] as const)('config refused: %s', (_what, yaml, backend, msg) => {
    expect(() => checkTracerConfig(cfgOf(yaml), 'execsnoop', backend)).toThrow(msg);
  });
});

describe('node steps', () => {
  it('container names reach the script only quoted', () => {
    const name = "x'$(touch /tmp/canary)`id`";
    const quoted = `'x'\\''$(touch /tmp/canary)\`id\`'`;
    expect(setupStep(DEFAULTS, 4, 'docker', name, 'execsnoop', 'bpftrace')).toBe(`sp_tracer 4 docker ${quoted} execsnoop bpftrace /sys/fs/bpf /etc/sneakpeek/execsnoop`);
    expect(teardownStep(DEFAULTS, 4, 'docker', name, 'tcptracer')).toBe(`sp_tracer_stop 4 docker ${quoted} tcptracer /sys/fs/bpf /etc/sneakpeek/tcptracer /etc/sneakpeek/execsnoop`);
  });

  // A real sh; the engine, map and env functions are stubs that only say they ran.
  it.each([
    ['the template step failed', "sp_tpl_execsnoop='/usr/bin/bpftrace not found on this node (config paths)'", [['ERR', '3', '/usr/bin/bpftrace not found on this node (config paths)']]],
    ['no template step ran', '', [['ERR', '3', 'template step missing']]],
    ['the template is fine', 'sp_tpl_execsnoop=', [['WARN', '3', 'sp_ns'], ['WARN', '3', 'sp_map'], ['WARN', '3', 'sp_env']]],
  ])('%s: nothing is pinned before the template is known to be usable', (_what, state, want) => {
    const stubs = ['sp_ns', 'sp_map', 'sp_env'].map((f) => `${f}() { rec WARN "$1" ${f}; sp_id=0123456789abcdef sp_ino=7; }`).join('\n');
    const r = runSteps([stubs, state, setupStep(DEFAULTS, 3, 'docker', 'web', 'execsnoop', 'bcc')]);
    expect(flat(r.records)).toEqual(want);
  });

  it('the bpftrace program is installed only with the bpftrace backend; --purge removes it with the template', () => {
    const t = [{ node: undefined, name: 'web', key: 0 }];
    expect(setupScript(t, DEFAULTS, { type: 'tcptracer', backend: 'bpftrace' })).toContain('\nsp_program tcptracer /etc/sneakpeek/tracers/tcptracer.bt ');
    expect(setupScript(t, DEFAULTS, { type: 'tcptracer', backend: 'bcc' })).not.toContain('\nsp_program ');
    expect(teardownScript(t, DEFAULTS, { type: 'tcptracer', purge: true })).toContain('\nsp_program_purge tcptracer ');
    expect(teardownScript(t, DEFAULTS, { type: 'tcptracer', purge: false })).not.toContain('\nsp_purge tcptracer ');
  });

  it.each(TOOLS)('the shipped %s.bt filters in the kernel on the inode argument', (tool) => {
    const prog = readProgram(tool);
    const probes = prog.match(/^tracepoint:[^\n]*/gm) ?? [];
    expect(probes.length).toBeGreaterThan(0);
    expect(prog).not.toMatch(/\bk(ret)?probe:/);
    expect(prog).toContain('/curtask->nsproxy->mnt_ns->ns.inum == $1/');
    expect(() => programStep(DEFAULTS, tool, prog)).not.toThrow();
  });

  it('programStep refuses text that is not a program of ours', () => {
    expect(() => programStep(DEFAULTS, 'execsnoop', 'echo hi')).toThrow(/does not look like/);
  });
});

describe('records to rows: text fields decoded from latin1 once', () => {
  const t = { node: undefined, name: 'web', key: 0 };
  const l1 = (s: string) => Buffer.from(s, 'utf8').toString('latin1');
  const dump = JSON.stringify([{ key: ['0x9b', '0x01', '0x00', '0xf0', '0x00', '0x00', '0x00', '0x00'], value: ['0x00', '0x00', '0x00', '0x00'] }]);

  it('an error and a warning from the node (collectUnitRecords decodes them once)', () => {
    const report = collectUnitRecords([{ tag: 'ERR', key: '0', message: l1('kein Zugriff: Größe') }, { tag: 'WARN', key: '0', message: l1('überall') }], [0]);
    const row = setupRow(t, report.outcomes.get(0));
    expect(row.error).toBe('kein Zugriff: Größe');
    expect(row.warnings).toEqual(['überall']);
    expect(teardownRow(t, collectUnitRecords([{ tag: 'ERR', key: '0', message: l1('é') }], [0]).outcomes.get(0)).error).toBe('é');
  });

  it('a warning built from an already decoded map path is not decoded again', () => {
    const extra = [
      { tag: 'NS' as const, key: '0', id: '0123456789ab', pid: '1', inode: '4026532251' },
      { tag: 'MAP' as const, key: '0', file: l1('/sys/fs/bpf/mnt_ns_é'), state: 'present', order: 'little', pruned: '1', dump },
    ];
    const row = setupRow(t, { key: 0, unit: 'execsnoop@0123456789ab.service', action: 'running', warnings: [], extra });
    expect(row.error).toBeUndefined();
    expect(row.map).toBe('/sys/fs/bpf/mnt_ns_é');
    expect(row.warnings).toEqual(['removed 1 stale key(s) from /sys/fs/bpf/mnt_ns_é (an earlier mount namespace of this container)']);
  });
});
