import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { DEFAULTS, type Config } from '../../lib/config.ts';
import { nodeScript } from '../../lib/io/node-files.ts';
import {
  checkInstanceId, checkUnitPath, collectUnitRecords, envFilePath, envStep, extraOf, instanceIdOf, logPath, MANAGED_HEADER, purgeStep,
  reloadStep, renderEnvFile, renderTemplate, settleStep, startStep, stopStep, systemdArg, templatePath, templateStep, unitName,
  type UnitSpec,
} from '../../lib/units.ts';

const spec: UnitSpec = {
  tool: 'demo',
  description: 'demo of %i',
  execStart: ['/usr/bin/demo', '--flag', 'a b', { env: 'SNEAKPEEK_ONE' }, { env: 'SNEAKPEEK_MANY', split: true }],
  env: ['SNEAKPEEK_ONE', 'SNEAKPEEK_MANY'],
  hardening: ['NoNewPrivileges=yes'],
};
const cfgWith = (over: Partial<Config>): Config => ({ ...structuredClone(DEFAULTS), ...over });

describe('systemdArg: one ExecStart= word, specifiers and variables escaped', () => {
  it.each([
    ['plain', 'plain'],
    ['--format-time', '--format-time'],
    ['%FT%TZ', '%%FT%%TZ'],
    ['$HOME', '$$HOME'],
    ['${X}', '$${X}'],
    ['a b', '"a b"'],
    ['say "hi"', '"say \\"hi\\""'],
    ['back\\slash', '"back\\\\slash"'],
    ["it's", `"it's"`],
    [';', '\\;'],
    ['a;b', 'a;b'],
    ['', '""'],
  ])('%j → %s', (arg, out) => {
    expect(systemdArg(arg)).toBe(out);
  });

  it.each(['new\nline', 'tab\there', 'cr\r', 'nul\0'])('refuses control characters: %j', (arg) => {
    expect(() => systemdArg(arg, 'fswatch.flags entry')).toThrow(/control character/);
  });
});

describe('instance ids are 12-hex container ids', () => {
  it.each(['0123456789ab', 'abcdefabcdef'])('accepts %s', (id) => expect(checkInstanceId(id)).toBe(id));
  it.each(['', '0123456789a', '0123456789abc', 'ABCDEF012345', '0123456789ag', '../../etc/x', '$(touch x)', 'web', '-0123456789a'])(
    'refuses %j',
    (id) => expect(() => checkInstanceId(id)).toThrow(/invalid instance id/),
  );
  it.each([
    ['0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', '0123456789ab'],
    ['docker://0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', '0123456789ab'],
    ['containerd://ABCDEF0123456789', 'abcdef012345'],
  ])('instanceIdOf(%s) = %s', (full, id) => expect(instanceIdOf(full)).toBe(id));
  it('instanceIdOf refuses what is not an id', () => expect(() => instanceIdOf('web-1')).toThrow(/invalid instance id/));
});

describe('paths that go into unit files must be plain absolute paths', () => {
  it.each(['/etc/systemd/system', '/var/log/sneakpeek', '/opt/x-1.2/bin@v:1'])('accepts %s', (p) => expect(checkUnitPath('unitDir', p)).toBe(p));
  it.each(['relative/dir', '/with space', '/a/../etc', '/pct%i', '/dollar$x', '/q"uote', "/q'uote", '/new\nline', '', '/semi;colon', '/back\\slash'])(
    'refuses %j naming the key',
    (p) => expect(() => checkUnitPath('unitDir', p)).toThrow(/config: 'unitDir' must be an absolute path/),
  );
});

describe('renderTemplate', () => {
  const journal = renderTemplate(DEFAULTS, spec);
  const file = renderTemplate(cfgWith({ log: { target: 'file', dir: '/var/log/sp' } }), spec);

  it.each([
    ['managed-by header first', (t: string) => t.startsWith(`${MANAGED_HEADER}\n`)],
    ['Restart=on-failure', (t: string) => t.includes('\nRestart=on-failure\n')],
    ['per-instance env file', (t: string) => t.includes('\nEnvironmentFile=/etc/sneakpeek/demo/%i.env\n')],
    ['ExecStart quoting and env refs', (t: string) => t.includes('\nExecStart=/usr/bin/demo --flag "a b" ${SNEAKPEEK_ONE} $SNEAKPEEK_MANY\n')],
    ['hardening', (t: string) => t.includes('\nNoNewPrivileges=yes\n')],
    ['sections', (t: string) => /\n\[Unit\]\n[\s\S]*\n\[Service\]\n/.test(t)],
    ['no container-specific value', (t: string) => !/[0-9a-f]{12}/.test(t)],
  ])('%s', (_name, check) => {
    expect(check(journal)).toBe(true);
    expect(check(file)).toBe(true);
  });

  it('journal target: stdout to the journal, named per instance', () => {
    expect(journal).toContain('\nStandardOutput=journal\nStandardError=inherit\nSyslogIdentifier=demo@%i\n');
    expect(journal).not.toContain('append:');
  });

  it('journal target: every entry carries the fields --events --follow matches, and bursts are kept', () => {
    expect(journal).toContain('\nLogExtraFields=SNEAKPEEK_TOOL=demo\nLogExtraFields=SNEAKPEEK_ID=%i\n');
    // 0 would mean journald's default (10000 lines per 30 s), not "no limit"
    expect(journal).toContain('\nLogRateLimitIntervalSec=30s\nLogRateLimitBurst=100000\n');
    expect(file).not.toContain('LogExtraFields');
  });

  it('file target: append to <log.dir>/<tool>-<ID>.log', () => {
    expect(file).toContain('\nStandardOutput=append:/var/log/sp/demo-%i.log\nStandardError=inherit\n');
    expect(file).not.toContain('journal');
  });

  it('a relative unit dir is refused, naming its key', () => {
    expect(() => templatePath(cfgWith({ unitDir: 'etc/systemd' }), 'demo')).toThrow(/'unitDir'/);
  });

  it.each([
    [{ envDir: '/etc/sp $(x)' }, /envDir/],
    [{ log: { target: 'file' as const, dir: '/var/log/%n' } }, /log\.dir/],
  ])('a hostile config path is refused, naming its key: %j', (over, re) => {
    expect(() => renderTemplate(cfgWith(over as Partial<Config>), spec)).toThrow(re);
  });

  it('a relative or hostile binary path is refused', () => {
    expect(() => renderTemplate(DEFAULTS, { ...spec, execStart: ['fswatch'] })).toThrow(/absolute path/);
    expect(() => renderTemplate(DEFAULTS, { ...spec, execStart: ['/usr/bin/x;rm'] })).toThrow(/absolute path/);
  });

  it('an env ref must be declared', () => {
    expect(() => renderTemplate(DEFAULTS, { ...spec, env: ['SNEAKPEEK_ONE'] })).toThrow(/SNEAKPEEK_MANY/);
  });
});

describe('paths and names', () => {
  it.each([
    [unitName('fswatch', '0123456789ab'), 'fswatch@0123456789ab.service'],
    [templatePath(cfgWith({ unitDir: '/etc/systemd/system/' }), 'fswatch'), '/etc/systemd/system/fswatch@.service'],
    [envFilePath(DEFAULTS, 'fswatch', '0123456789ab'), '/etc/sneakpeek/fswatch/0123456789ab.env'],
    [logPath(DEFAULTS, 'fswatch', '0123456789ab'), '/var/log/sneakpeek/fswatch-0123456789ab.log'],
  ])('%s', (got, want) => expect(got).toBe(want));
  it('tool names are plain words', () => expect(() => unitName('fs-watch', '0123456789ab')).toThrow(/tool name/));
});

describe('renderEnvFile', () => {
  it('header plus NAME=value lines', () => {
    expect(renderEnvFile({ SNEAKPEEK_WATCH_DIR: '/var/lib/docker/overlay2/x/diff', SNEAKPEEK_IMAGE_DIRS: '/a /b' })).toBe(
      `${MANAGED_HEADER}\nSNEAKPEEK_WATCH_DIR=/var/lib/docker/overlay2/x/diff\nSNEAKPEEK_IMAGE_DIRS=/a /b\n`,
    );
  });
  it.each(['a"b', "a'b", 'a$b', 'a\nb', 'a%b', ' lead', 'trail ', 'a\\b', 'a`b`'])('refuses value %j', (v) => {
    expect(() => renderEnvFile({ SNEAKPEEK_X: v })).toThrow(/unsafe value/);
  });
});

describe('node steps', () => {
  const cfg = cfgWith({ unitDir: '/tmp/u', envDir: '/tmp/e' });
  const script = nodeScript(cfg, ['bpftool_map_container_ns'], [
    'sp_lock',
    templateStep(cfg, spec, ['/usr/bin/demo']),
    envStep(cfg, 0, 'demo', '0123456789ab', { SNEAKPEEK_ONE: '/x', SNEAKPEEK_MANY: 'a b' }),
    reloadStep(),
    startStep(0),
    settleStep([0]),
    stopStep(cfg, 0, 'demo', '0123456789ab'),
    purgeStep(cfg, 'demo'),
  ]);

  it.each(['dash', 'bash'])('is valid sh (%s -n)', (sh) => {
    execFileSync(sh, ['-n'], { input: script });
  });

  it('puts every value through the one quoting helper', () => {
    expect(envStep(cfg, 3, 'demo', '0123456789ab', { SNEAKPEEK_ONE: '/a b' })).toBe(
      "sp_env 3 demo 0123456789ab /tmp/e/demo 'SNEAKPEEK_ONE=/a b'",
    );
    expect(() => envStep(cfg, 3, 'demo', '0123456789ab', { SNEAKPEEK_ONE: '$(touch /tmp/x)' })).toThrow(/unsafe value/);
    expect(() => envStep(cfg, 3, 'demo', 'x;rm', {})).toThrow(/invalid instance id/);
    expect(() => stopStep(cfg, 3, 'demo', '../../etc')).toThrow(/invalid instance id/);
  });
});

describe('collectUnitRecords', () => {
  it('sorts records into per-key outcomes and node notes', () => {
    const r = collectUnitRecords(
      [
        { tag: 'UNIT', key: '-', file: '/etc/systemd/system/demo@.service', state: 'created' },
        { tag: 'WATCH', key: '0', upper: '/up', dirs: '3', imageDirs: '10' },
        { tag: 'OK', key: '0', unit: 'demo@0123456789ab.service', action: 'started' },
        { tag: 'ERR', key: '1', message: 'no such container: web' },
        { tag: 'ERR', key: '1', message: 'second error is ignored' },
        { tag: 'WARN', key: '1', message: 'careful' },
        { tag: 'WARN', key: '-', message: 'template kept' },
        { tag: 'BUSY', key: '-', message: 'another sneakpeek run holds /run/lock/sneakpeek.lock (waited 30 s)' },
        { tag: 'OK', key: '9', unit: 'unknown key is ignored', action: 'x' },
      ],
      [0, 1, 2],
    );
    expect(r.templates).toEqual([['/etc/systemd/system/demo@.service', 'created']]);
    expect(r.warnings).toEqual(['template kept']);
    expect(r.busy).toMatch(/another sneakpeek run holds/);
    expect(r.outcomes.get(0)).toMatchObject({ unit: 'demo@0123456789ab.service', action: 'started' });
    expect(r.outcomes.get(0)!.error).toBeUndefined();
    expect(extraOf(r.outcomes.get(0), 'WATCH')).toMatchObject({ upper: '/up', dirs: '3', imageDirs: '10' });
    expect(r.outcomes.get(1)).toMatchObject({ error: 'no such container: web', warnings: ['careful'] });
    expect(r.outcomes.get(2)!.unit ?? r.outcomes.get(2)!.error).toBeUndefined();
  });
});
