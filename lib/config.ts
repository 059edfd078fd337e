// sneakpeek.config.yaml: the schema is the defaults object; parseConfig is pure and names
// the bad key's path. Precedence: flags > environment > file > defaults (see resolveConfig).
import { createRequire } from 'node:module';
import { UsageError } from './errors.ts';

// yaml is loaded when a config is first parsed, not at start-up (--help never parses one): the
// tools call loadYaml() once their arguments are read (lib/cli.ts); any other caller of
// parseConfig gets node_modules' copy on first use.
let yamlParse: ((text: string) => unknown) | undefined;

/** Load the YAML parser ahead of parseConfig (bundled by bin/run: half the cost of node_modules' copy). */
export async function loadYaml(): Promise<void> {
  yamlParse ??= (await import('./yaml-parse.ts')).parse;
}

function parseYaml(text: string): unknown {
  yamlParse ??= (createRequire(import.meta.url)('yaml') as typeof import('yaml')).parse;
  return yamlParse(text);
}

// containerd: crictl when the node has it, else ctr (what containerd:// pods get).
export const ENGINES = ['docker', 'podman', 'crictl', 'ctr', 'containerd'] as const;
export const BACKENDS = ['bcc', 'bpftrace'] as const;
export const LOG_TARGETS = ['journal', 'file'] as const;
/** How node scripts reach a node: ssh (+ sudo), or a short-lived privileged pod (lib/io/kubectl-transport.ts). */
export const TRANSPORTS = ['ssh', 'kubectl'] as const;
export type Transport = (typeof TRANSPORTS)[number];
export type Engine = (typeof ENGINES)[number];
export type Backend = (typeof BACKENDS)[number];

export interface Config {
  ssh: {
    user: string;
    port: number | null;
    identityFile: string | null;
    connectTimeout: number;
    serverAliveInterval: number;
    controlMaster: boolean;
    options: string[];
  };
  sudo: boolean;
  engine: Engine;
  concurrency: number;
  backend: Backend;
  paths: {
    docker: string;
    podman: string;
    crictl: string;
    ctr: string;
    kubectl: string;
    bpftool: string;
    bpftrace: string;
    fswatch: string;
    execsnoop: string;
    tcptracer: string;
  };
  /** The containerd that `ctr` talks to (engine ctr, and crictl's stopped containers). */
  containerd: { address: string; namespace: string };
  unitDir: string;
  envDir: string;
  mapDir: string;
  log: { target: (typeof LOG_TARGETS)[number]; dir: string };
  fswatch: { events: string[]; flags: string[]; imageDirs: number };
  /** Seconds a node may take per command, by job (--timeout overrides for one run). */
  timeouts: { files: number; lookup: number; units: number; events: number; kubectl: number };
  /** The node-side lock that serialises sneakpeek's changes on a node. */
  lock: { file: string; wait: number };
  /** How node scripts reach named nodes (-a, cluster-wide runs); no -a is always this host. */
  transport: Transport;
  /** transport kubectl: the pod each node's script runs in. */
  kubectl: { image: string; namespace: string; pullSecret: string | null; startTimeout: number };
}

/** The jobs a deadline is set for (config `timeouts`). */
export type Job = keyof Config['timeouts'];

export const DEFAULTS: Config = {
  ssh: {
    user: 'vagrant',
    port: null,
    identityFile: null,
    connectTimeout: 10,
    serverAliveInterval: 10,
    controlMaster: false,
    options: [],
  },
  sudo: true,
  engine: 'docker',
  concurrency: 16,
  backend: 'bcc',
  paths: {
    docker: 'docker',
    podman: 'podman',
    crictl: 'crictl',
    ctr: 'ctr',
    kubectl: 'kubectl',
    bpftool: 'bpftool',
    bpftrace: '/usr/bin/bpftrace',
    fswatch: '/usr/bin/fswatch',
    execsnoop: '/usr/sbin/execsnoop-bpfcc',
    tcptracer: '/usr/sbin/tcptracer-bpfcc',
  },
  containerd: { address: '/run/containerd/containerd.sock', namespace: 'k8s.io' },
  unitDir: '/etc/systemd/system',
  envDir: '/etc/sneakpeek',
  mapDir: '/sys/fs/bpf',
  log: { target: 'journal', dir: '/var/log/sneakpeek' },
  fswatch: {
    events: ['Created', 'Updated', 'Removed', 'MovedFrom', 'MovedTo', 'AttributeModified'],
    flags: ['--recursive', '--timestamp', '--utc-time', '--format-time', '%FT%TZ', '--event-flags', '--allow-overflow'],
    imageDirs: 2048,
  },
  timeouts: { files: 900, lookup: 60, units: 120, events: 120, kubectl: 60 },
  lock: { file: '/run/lock/sneakpeek.lock', wait: 30 },
  transport: 'ssh',
  kubectl: { image: 'busybox:1.36', namespace: 'default', pullSecret: null, startTimeout: 60 },
};

const ENUMS: Record<string, readonly string[]> = {
  engine: ENGINES,
  backend: BACKENDS,
  'log.target': LOG_TARGETS,
  transport: TRANSPORTS,
};
const NULLABLE = new Set(['ssh.port', 'ssh.identityFile', 'kubectl.pullSecret']);
const POSITIVE = new Set(['ssh.port', 'ssh.connectTimeout', 'ssh.serverAliveInterval', 'concurrency', 'timeouts.files', 'timeouts.lookup', 'timeouts.units', 'timeouts.events', 'timeouts.kubectl', 'lock.wait', 'kubectl.startTimeout']);

type Plain = { [k: string]: unknown };
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `a ${typeof v}`;
}

/** Check `value` against the shape of `schema`, returning a merged copy; throw naming the key. */
function merge(schema: Plain, value: unknown, at: string, source: string): Plain {
  if (!isPlain(value)) throw new UsageError(`${source}: ${at || 'top level'} must be a mapping, got ${typeName(value)}`);
  const out: Plain = { ...schema };
  for (const [key, v] of Object.entries(value)) {
    const path = at ? `${at}.${key}` : key;
    if (!(key in schema)) throw new UsageError(`${source}: unknown key '${path}'`);
    out[key] = checkValue(schema[key], v, path, source);
  }
  return out;
}

function checkValue(def: unknown, v: unknown, path: string, source: string): unknown {
  if (isPlain(def)) return merge(def, v, path, source);
  if (v === null && NULLABLE.has(path)) return null;
  const want = Array.isArray(def) ? 'list' : def === null ? (path === 'ssh.port' ? 'number' : 'string') : typeof def;
  if (want === 'list') {
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
      throw new UsageError(`${source}: '${path}' must be a list of strings, got ${typeName(v)}`);
    if ((v as string[]).some((x) => x.includes('\n'))) throw new UsageError(`${source}: '${path}' entries must be one line`);
    if (path === 'ssh.options') for (const o of v as string[]) checkSshOption(o, source);
    return v;
  }
  if (typeof v !== want) throw new UsageError(`${source}: '${path}' must be a ${want}, got ${typeName(v)}`);
  if (want === 'number' && (!Number.isInteger(v) || (POSITIVE.has(path) && (v as number) < 1)))
    throw new UsageError(`${source}: '${path}' must be a positive integer, got ${String(v)}`);
  if (want === 'string' && (v as string).includes('\n'))
    throw new UsageError(`${source}: '${path}' must be one line`);
  if (path === 'ssh.user') checkSshUser(v as string, source);
  if (path in KUBE_NAMES) checkKubeName(path, v as string, source);
  const allowed = ENUMS[path];
  if (allowed && !allowed.includes(v as string))
    throw new UsageError(`${source}: '${path}' must be one of ${allowed.join(', ')}, got '${String(v)}'`);
  return v;
}

// What the API server would accept for these keys (pod spec fields): refused here, before any pod.
const KUBE_NAMES: Record<string, [RegExp, string]> = {
  'kubectl.namespace': [/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'a namespace name (DNS label: a-z, 0-9, -)'],
  'kubectl.pullSecret': [/^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'a secret name (a-z, 0-9, -, .)'],
  // registry/path:tag@digest: no blanks, no quotes, no leading dash
  'kubectl.image': [/^[A-Za-z0-9][A-Za-z0-9._\/:@-]{0,511}$/, 'an image reference such as busybox:1.36 or registry.example/tools/busybox@sha256:…'],
};

function checkKubeName(path: string, v: string, source: string): void {
  const [re, want] = KUBE_NAMES[path]!;
  if (!re.test(v)) throw new UsageError(`${source}: '${path}' must be ${want}, got ${JSON.stringify(v)}`);
}

const USER_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/;

/** An ssh login name; anything else (blanks, `$(…)`, a leading dash) is refused. */
export function checkSshUser(user: string, source = 'config'): string {
  if (!USER_RE.test(user)) throw new UsageError(`${source}: invalid ssh user ${JSON.stringify(user)}`);
  return user;
}

/** One ssh -o option, `Name=value` or `Name value`, as ~/.ssh/config would hold it. */
export function checkSshOption(opt: string, source = 'config'): string {
  if (!/^[A-Za-z]+[= ]\S/.test(opt)) throw new UsageError(`${source}: ssh.options entry ${JSON.stringify(opt)} is not Name=value`);
  return opt;
}

/** Parse config text (YAML) over the defaults. Pure. An empty document means all defaults. */
export function parseConfig(text: string, source = 'config'): Config {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new UsageError(`${source}: not valid YAML (${(err as Error).message.split('\n')[0]})`);
  }
  if (doc === null || doc === undefined) return structuredClone(DEFAULTS);
  return merge(DEFAULTS as unknown as Plain, doc, '', source) as unknown as Config;
}

/** Environment overrides, each naming a config key; applied over the file. */
export const ENV_KEYS: Record<string, string> = {
  SNEAKPEEK_SSH_USER: 'ssh.user',
  SNEAKPEEK_ENGINE: 'engine',
  SNEAKPEEK_BACKEND: 'backend',
  SNEAKPEEK_CONCURRENCY: 'concurrency',
  SNEAKPEEK_SUDO: 'sudo',
  SNEAKPEEK_TRANSPORT: 'transport',
};

/** Set a dotted key from a string (env var or flag), validated like the file. */
export function setKey(cfg: Config, key: string, raw: string, source: string): Config {
  const parts = key.split('.');
  let def: unknown = DEFAULTS;
  for (const p of parts) def = (def as Plain)[p];
  let v: unknown = raw;
  if (typeof def === 'number' || key === 'ssh.port') v = /^-?\d+$/.test(raw) ? Number(raw) : raw;
  if (typeof def === 'boolean') v = raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : raw;
  const checked = checkValue(def, v, key, source);
  const out = structuredClone(cfg) as unknown as Plain;
  let node = out;
  for (const p of parts.slice(0, -1)) node = node[p] as Plain;
  node[parts[parts.length - 1]!] = checked;
  return out as unknown as Config;
}

/** The command-line flag that sets a config key, for messages ("--timeout: …"). */
export function flagOf(key: string): string {
  if (key.startsWith('timeouts.')) return '--timeout';
  const flags: Record<string, string> = { 'ssh.user': '--user', engine: '--engine', backend: '--backend', transport: '--transport', 'kubectl.namespace': '--namespace' };
  return flags[key] ?? `flag for ${key}`;
}

/** File (already read) < environment < flags. `flags` maps dotted keys to raw strings. */
export function resolveConfig(
  fileText: string | null,
  fileSource: string,
  env: Record<string, string | undefined>,
  flags: Record<string, string | undefined> = {},
): Config {
  let cfg = fileText === null ? structuredClone(DEFAULTS) : parseConfig(fileText, fileSource);
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    const raw = env[name];
    if (raw !== undefined && raw !== '') cfg = setKey(cfg, key, raw, `environment ${name}`);
  }
  for (const [key, raw] of Object.entries(flags)) {
    if (raw !== undefined) cfg = setKey(cfg, key, raw, flagOf(key));
  }
  return cfg;
}
