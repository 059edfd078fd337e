import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mapNameOf } from '../../lib/bpfmap.ts';
import { DEFAULTS, parseConfig, type Config } from '../../lib/config.ts';
import { nodeScript } from '../../lib/node-script.ts';
import { RecordSplitter, splitFields } from '../../lib/wire.ts';
import { readProgram } from '../../lib/io/node-files.ts';
import {
  backendArgv, checkTracerConfig, launcher, mapFileOf, programPath, programStep, setupStep, teardownStep, tracerDefs, tracerSpec, type Tool,
} from '../../lib/tracers.ts';
import { renderTemplate } from '../../lib/units.ts';
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
    expect(setupScript([{ node: undefined, name: 'web', key: 0 }], DEFAULTS, { type: 'procmon', backend: 'bcc' })).toContain('sp_mapn=ns_$sp_sid');
    expect(programPath(cfgOf('envDir: /etc/sp/'), 'tcptracer')).toBe('/etc/sp/tracers/tcptracer.bt');
  });

  it.each(['/sys/fs/bpf', '/sys/fs/bpf/', '/sys/fs/bpf/sp,x'])('mapDir %s: setup and teardown on the node name the map as mapFileOf does', (dir) => {
    const cfg = cfgOf(`mapDir: "${dir}"`);
    const id = '0123456789ab';
    // setup: sp_mon_ns (a definition); teardown: its step.
    for (const text of [tracerDefs(cfg).join('\n'), teardownStep(cfg, 0, 'web', 'execsnoop')]) {
      const assign = /(?:^|\s)(sp_mapf=\S+)/m.exec(text)?.[1];
      expect(assign).toBeDefined();
      const r = spawnSync('sh', ['-c', `sp_sid=${id} sp_cid=${id}; ${assign}; printf %s "$sp_mapf"`], { encoding: 'utf8' });
      expect(r.stdout).toBe(mapFileOf(cfg, id));
    }
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
    expect(setupStep(DEFAULTS, 4, name, 'execsnoop', 'bpftrace')).toMatch(new RegExp(`^sp_mon_ns 4 ${quoted.replace(/[$()`'\\]/g, '\\$&')} execsnoop && sp_map 4 "\\$sp_mapf" "\\$sp_mapn" "\\$sp_ino" 1 && sp_env 4 execsnoop "\\$sp_sid" `));
    expect(teardownStep(DEFAULTS, 4, name, 'tcptracer')).toContain(`sp_cid 4 ${quoted} && `);
  });

  it('setup: the map is exact (stale keys pruned) and the env file names backend, map and inode', () => {
    const s = setupStep(DEFAULTS, 1, 'web', 'execsnoop', 'bcc');
    expect(s).toContain('sp_map 1 "$sp_mapf" "$sp_mapn" "$sp_ino" 1');
    expect(s).toContain('SNEAKPEEK_BACKEND=bcc');
    expect(s).toContain('"SNEAKPEEK_MNTNS_MAP=$sp_mapf" "SNEAKPEEK_MNTNS_INODE=$sp_ino"');
  });

  it('teardown keeps the map while the other tool of the same container is configured', () => {
    expect(teardownStep(DEFAULTS, 2, 'web', 'execsnoop')).toContain('sp_other=/etc/sneakpeek/tcptracer/"$sp_cid".env');
    expect(teardownStep(DEFAULTS, 2, 'web', 'tcptracer')).toContain('sp_other=/etc/sneakpeek/execsnoop/"$sp_cid".env');
  });

  // A real sh; the engine, map and env functions are stubs that only say they ran.
  it.each([
    ['the template step failed', "sp_tpl_execsnoop='/usr/bin/bpftrace not found on this node (config paths)'", [['ERR', '3', '/usr/bin/bpftrace not found on this node (config paths)']]],
    ['no template step ran', '', [['ERR', '3', 'template step missing']]],
    ['the template is fine', 'sp_tpl_execsnoop=', [['RAN', '3', 'sp_ns'], ['RAN', '3', 'sp_map'], ['RAN', '3', 'sp_env']]],
  ])('%s: nothing is pinned before the template is known to be usable', (_what, state, want) => {
    const stubs = ['sp_ns', 'sp_map', 'sp_env'].map((f) => `${f}() { rec RAN "$1" ${f}; sp_id=0123456789abcdef sp_ino=7; }`).join('\n');
    const script = nodeScript([...tracerDefs(DEFAULTS), stubs], [state, setupStep(DEFAULTS, 3, 'web', 'execsnoop', 'bcc')]);
    const r = spawnSync('sh', ['-s'], { input: script });
    const records: string[][] = [];
    new RecordSplitter().push(r.stdout, (rec) => records.push(splitFields(rec)));
    expect(records).toEqual(want);
  });

  it('the bpftrace program is installed only with the bpftrace backend; --purge removes it with the template', () => {
    const t = [{ node: undefined, name: 'web', key: 0 }];
    expect(setupScript(t, DEFAULTS, { type: 'tcptracer', backend: 'bpftrace' })).toContain('# program tcptracer.bt');
    expect(setupScript(t, DEFAULTS, { type: 'tcptracer', backend: 'bcc' })).not.toContain('# program tcptracer.bt');
    expect(teardownScript(t, DEFAULTS, { type: 'tcptracer', purge: true })).toContain('# purge tcptracer.bt');
    expect(teardownScript(t, DEFAULTS, { type: 'tcptracer', purge: false })).not.toContain('# purge');
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

  it('an error and a warning from the node', () => {
    const row = setupRow(t, { key: 0, error: l1('kein Zugriff: Größe'), warnings: [l1('überall')], extra: new Map() });
    expect(row.error).toBe('kein Zugriff: Größe');
    expect(row.warnings).toEqual(['überall']);
    expect(teardownRow(t, { key: 0, error: l1('é'), warnings: [], extra: new Map() }).error).toBe('é');
  });

  it('a warning built from an already decoded map path is not decoded again', () => {
    const extra = new Map([['NS', [['0123456789ab', '1', '4026532251']]], ['MAP', [[l1('/sys/fs/bpf/mnt_ns_é'), 'present', 'little', '1', dump]]]]);
    const row = setupRow(t, { key: 0, unit: 'execsnoop@0123456789ab.service', action: 'running', warnings: [], extra });
    expect(row.error).toBeUndefined();
    expect(row.map).toBe('/sys/fs/bpf/mnt_ns_é');
    expect(row.warnings).toEqual(['removed 1 stale key(s) from /sys/fs/bpf/mnt_ns_é (an earlier mount namespace of this container)']);
  });
});
