// sneakpeek.config.yaml: schema, errors that name the key, precedence flags > env > file > defaults.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, loadConfig } from '../../lib/io/entry.ts';
import { DEFAULTS, ENV_KEYS, parseConfig, resolveConfig } from '../../lib/config.ts';
import { UsageError } from '../../lib/errors.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'sp-config-unit-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const p = path.join(tmp, name);
  writeFileSync(p, text);
  return p;
};

describe('the shipped sneakpeek.config.yaml', () => {
  it('documents exactly the built-in defaults (every key, same values)', () => {
    expect(parseConfig(readFileSync(DEFAULT_CONFIG, 'utf8'))).toEqual(DEFAULTS);
  });

  it('names every key of the schema', () => {
    const text = readFileSync(DEFAULT_CONFIG, 'utf8');
    const keys = (o: object, at = ''): string[] =>
      Object.entries(o).flatMap(([k, v]) => (v && typeof v === 'object' && !Array.isArray(v) ? keys(v, `${at}${k}.`) : [`${at}${k}`]));
    for (const k of keys(DEFAULTS)) expect(text, k).toMatch(new RegExp(`^\\s*${k.split('.').pop()}:`, 'm'));
  });
});

describe('parseConfig', () => {
  it.each([
    ['', {}],
    ['# only a comment\n', {}],
    ['ssh:\n  user: ops\n', { ssh: { ...DEFAULTS.ssh, user: 'ops' } }],
    ['ssh:\n  port: 2222\n  identityFile: /k\n', { ssh: { ...DEFAULTS.ssh, port: 2222, identityFile: '/k' } }],
    ['ssh:\n  port: null\n', {}],
    ['engine: crictl\nsudo: false\nconcurrency: 64\n', { engine: 'crictl', sudo: false, concurrency: 64 }],
    ['ssh:\n  options: [ProxyJump=bastion, "ServerAliveInterval=5"]\n', { ssh: { ...DEFAULTS.ssh, options: ['ProxyJump=bastion', 'ServerAliveInterval=5'] } }],
    ['paths:\n  execsnoop: /usr/share/bcc/tools/execsnoop\n', { paths: { ...DEFAULTS.paths, execsnoop: '/usr/share/bcc/tools/execsnoop' } }],
    ['log:\n  target: file\n', { log: { ...DEFAULTS.log, target: 'file' } }],
  ])('%j → defaults with %j on top', (text, over) => {
    expect(parseConfig(text)).toEqual({ ...DEFAULTS, ...over });
  });

  it.each([
    ['colour: blue\n', /unknown key 'colour'/],
    ['ssh:\n  usr: x\n', /unknown key 'ssh\.usr'/],
    ['paths:\n  jq: /usr/bin/jq\n', /unknown key 'paths\.jq'/],
    ['ssh: root\n', /'?ssh'? must be a mapping, got a string/],
    ['ssh:\n  port: "22"\n', /'ssh\.port' must be a number, got a string/],
    ['ssh:\n  port: 0\n', /'ssh\.port' must be a positive integer/],
    ['ssh:\n  connectTimeout: 2.5\n', /'ssh\.connectTimeout' must be a positive integer/],
    ['ssh:\n  user: null\n', /'ssh\.user' must be a string, got null/],
    ['ssh:\n  options: ProxyJump=x\n', /'ssh\.options' must be a list of strings, got a string/],
    ['ssh:\n  options: [1, 2]\n', /'ssh\.options' must be a list of strings/],
    ['concurrency: 0\n', /'concurrency' must be a positive integer, got 0/],
    ['concurrency: many\n', /'concurrency' must be a number, got a string/],
    ['sudo: yes please\n', /'sudo' must be a boolean, got a string/],
    ['engine: rkt\n', /'engine' must be one of docker, podman, crictl, ctr, containerd, got 'rkt'/],
    ['backend: ebpf\n', /'backend' must be one of bcc, bpftrace/],
    ['log:\n  target: syslog\n', /'log\.target' must be one of journal, file/],
    ['paths:\n  docker: "docker\\nrm -rf /"\n', /'paths\.docker' must be one line/],
    ['- a\n- b\n', /top level must be a mapping, got a list/],
    ['ssh: [\n', /not valid YAML/],
  ])('%j is refused naming the key', (text, msg) => {
    let err: unknown;
    try {
      parseConfig(text, 'config test.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/^config test\.yaml: /);
    expect((err as Error).message).toMatch(msg);
    expect((err as Error).message).not.toContain('\n');
  });
});

describe('precedence: flags > environment > file > defaults', () => {
  const text = 'engine: podman\nssh:\n  user: fromfile\nconcurrency: 3\n';
  it.each([
    [{}, {}, { engine: 'podman', user: 'fromfile', concurrency: 3 }],
    [{ SNEAKPEEK_ENGINE: 'crictl', SNEAKPEEK_SSH_USER: 'fromenv', SNEAKPEEK_CONCURRENCY: '9' }, {}, { engine: 'crictl', user: 'fromenv', concurrency: 9 }],
    [{ SNEAKPEEK_ENGINE: 'crictl', SNEAKPEEK_SSH_USER: 'fromenv' }, { engine: 'docker', 'ssh.user': 'fromflag' }, { engine: 'docker', user: 'fromflag', concurrency: 3 }],
    [{ SNEAKPEEK_ENGINE: '' }, { engine: undefined }, { engine: 'podman', user: 'fromfile', concurrency: 3 }],
  ])('env %j, flags %j', (env, flags, want) => {
    const c = resolveConfig(text, 'config f', env, flags);
    expect({ engine: c.engine, user: c.ssh.user, concurrency: c.concurrency }).toEqual(want);
  });

  it('no file at all: the built-in defaults (ssh user vagrant, like the original)', () => {
    expect(resolveConfig(null, 'none', {})).toEqual(DEFAULTS);
    expect(DEFAULTS.ssh.user).toBe('vagrant');
  });

  it.each([
    ['SNEAKPEEK_SUDO', '0', (c: typeof DEFAULTS) => c.sudo, false],
    ['SNEAKPEEK_SUDO', 'true', (c: typeof DEFAULTS) => c.sudo, true],
    ['SNEAKPEEK_BACKEND', 'bpftrace', (c: typeof DEFAULTS) => c.backend, 'bpftrace'],
  ])('%s=%s', (name, value, get, want) => {
    expect(get(resolveConfig(null, 'none', { [name]: value }))).toBe(want);
  });

  it.each([
    ['SNEAKPEEK_CONCURRENCY', 'lots', /environment SNEAKPEEK_CONCURRENCY: 'concurrency' must be a number/],
    ['SNEAKPEEK_SUDO', 'maybe', /environment SNEAKPEEK_SUDO: 'sudo' must be a boolean/],
    ['SNEAKPEEK_ENGINE', 'docker;id', /environment SNEAKPEEK_ENGINE: 'engine' must be one of/],
    ['SNEAKPEEK_SSH_USER', 'a\nb', /'ssh\.user' must be one line/],
  ])('a bad %s names the variable and the key', (name, value, msg) => {
    expect(() => resolveConfig(null, 'none', { [name]: value })).toThrow(msg);
  });

  it.each([
    ['engine', 'lxc', /^--engine: 'engine' must be one of/],
    ['timeouts.units', '-3', /^--timeout: 'timeouts\.units' must be a positive integer, got -3$/],
    ['timeouts.files', 'soon', /^--timeout: 'timeouts\.files' must be/],
    ['transport', 'carrier', /^--transport: 'transport' must be one of ssh, kubectl, got 'carrier'$/],
  ])('a bad flag value (%s = %s) names the flag and the key', (key, value, msg) => {
    expect(() => resolveConfig(null, 'none', {}, { [key]: value })).toThrow(msg);
  });

  it('every environment variable maps to a real key', () => {
    for (const key of Object.values(ENV_KEYS)) {
      let v: unknown = DEFAULTS;
      for (const p of key.split('.')) v = (v as Record<string, unknown>)[p];
      expect(v, key).not.toBeUndefined();
    }
  });
});

describe('loadConfig: which file', () => {
  const a = file('a.yaml', 'engine: podman\n');
  const b = file('b.yaml', 'engine: crictl\n');
  it.each([
    ['--config wins over SNEAKPEEK_CONFIG', a, { SNEAKPEEK_CONFIG: b }, 'podman'],
    ['SNEAKPEEK_CONFIG without --config', undefined, { SNEAKPEEK_CONFIG: b }, 'crictl'],
    ['neither: the repo copy (= defaults)', undefined, {}, DEFAULTS.engine],
    ['an empty SNEAKPEEK_CONFIG is unset', undefined, { SNEAKPEEK_CONFIG: '' }, DEFAULTS.engine],
  ])('%s', (_, flag, env, want) => {
    expect(loadConfig(flag, env).engine).toBe(want);
  });

  it.each([
    [path.join(tmp, 'missing.yaml'), /missing\.yaml: no such file/],
    [tmp, /config .*: (EISDIR|.*directory)/i],
    [file('bad.yaml', 'nope: 1\n'), /bad\.yaml: unknown key 'nope'/],
  ])('%s → a usage error naming the file', (p, msg) => {
    expect(() => loadConfig(p, {})).toThrow(UsageError);
    expect(() => loadConfig(p, {})).toThrow(msg);
  });
});
