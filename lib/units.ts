// systemd template units for the monitoring types (fswatch@, execsnoop@, tcptracer@, …):
// render a template from config (pure: strings in, strings out), the node steps that install,
// start and tear down its instances (calls of scripts/bpftool_map_container_ns.sh's functions),
// and the records they answer with, by container.
//
// Shape (the same for every tool):
//   <cfg.unitDir>/<tool>@.service        the template, rendered from config, one per node;
//                                         never changes per container
//   <cfg.envDir>/<tool>/<ID>.env          per-instance values (UpperDir, map file, inode…),
//                                         read through EnvironmentFile=
//   <tool>@<ID>.service                  the instance; ID = the 12-hex-char container id
//   <cfg.log.dir>/<tool>-<ID>.log         with log.target: file (else the journal, every entry
//                                         with SNEAKPEEK_TOOL=<tool> SNEAKPEEK_ID=<ID>)
//
// Node script (one per node): templateStep, the tool's per-container step (which writes the
// env file with sp_env), reloadStep (daemon-reload once, only if a template changed), startStep
// per container, settleStep (one short wait; each instance must still be active → OK record).
// Teardown: the tool's stop step per container, purgeStep (templates), reloadStep.
import type { Config } from './config.ts';
import { UsageError } from './errors.ts';
import { sh } from './quote.ts';
import { utf8, type NodeRecord, type RecordOf, type Tag } from './wire.ts';

export const MANAGED_HEADER = '# managed by sneakpeek — do not edit: sneakpeek rewrites this file from sneakpeek.config.yaml';

/** Lines per interval journald keeps of one instance (journal target). */
export const LOG_RATE_LIMIT = { intervalSec: 30, burst: 100000 };

/**
 * A word of ExecStart= that is an instance value from the env file: `${NAME}`, one argument;
 * with `split`, `$NAME`: split at blanks into any number of arguments (none when empty).
 */
export interface EnvRef {
  env: string;
  split?: boolean;
}

export interface UnitSpec {
  /** Template name prefix: `<tool>@.service`; lower-case letters and digits (also a sh variable suffix). */
  tool: string;
  /** The `sneakpeek -t TYPE` that manages it, when not the tool's own name (procmon → execsnoop). */
  type?: string;
  description: string;
  /** Command line; strings are literal arguments, EnvRefs per-instance values. */
  execStart: (string | EnvRef)[];
  /** Names every instance's env file must define (the EnvRefs and any extra). */
  env: string[];
  /** Hardening lines for [Service]; each tool picks what does not break it. */
  hardening: string[];
  /** Extra [Service] lines (e.g. ExecStartPre=…), rendered before the hardening. */
  serviceExtra?: string[];
  /** [Unit] After= entries besides the defaults. */
  after?: string[];
}

// Safe for paths inside unit files and env files: no spaces, quotes, %, $, \ or newlines.
const SAFE_PATH = /^\/[A-Za-z0-9._+@:,=/-]*$/;
// Env file values may hold blanks (lists for split EnvRefs), never quotes, $, % or newlines.
const SAFE_VALUE = /^(?:[A-Za-z0-9._+@:,=/-]+(?: [A-Za-z0-9._+@:,=/-]+)*)?$/;
const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;
const TOOL_NAME = /^[a-z][a-z0-9]*$/;
const INSTANCE_ID = /^[0-9a-f]{12}$/;

/** An instance id is the 12-hex-char container id; anything else is refused. */
export function checkInstanceId(id: string): string {
  if (!INSTANCE_ID.test(id)) throw new UsageError(`invalid instance id ${JSON.stringify(id)}: expected 12 lower-case hex characters (a container id)`);
  return id;
}

/** The instance id of a (full or short) container id: its first 12 hex characters. */
export function instanceIdOf(containerId: string): string {
  const id = containerId.replace(/^[a-z-]+:\/\//, '').toLowerCase().slice(0, 12);
  return checkInstanceId(id);
}

export function checkTool(tool: string): string {
  if (!TOOL_NAME.test(tool)) throw new Error(`bad unit tool name ${JSON.stringify(tool)}`);
  return tool;
}

/** A config path that ends up in a unit file or a node script as a directory or binary. */
export function checkUnitPath(key: string, value: string): string {
  if (!SAFE_PATH.test(value) || value.split('/').includes('..'))
    throw new UsageError(`config: '${key}' must be an absolute path of letters, digits and ._+@:,=/- (got ${JSON.stringify(value)})`);
  return value;
}

export const unitName = (tool: string, id: string) => `${checkTool(tool)}@${checkInstanceId(id)}.service`;
export const templateName = (tool: string) => `${checkTool(tool)}@.service`;
/** A directory without its trailing slashes ('/' stays '/'). */
export const trim = (dir: string) => (dir.length > 1 ? dir.replace(/\/+$/, '') : dir);
export const templatePath = (cfg: Config, tool: string) => `${trim(checkUnitPath('unitDir', cfg.unitDir))}/${templateName(tool)}`;
export const envDirOf = (cfg: Config, tool: string) => `${trim(checkUnitPath('envDir', cfg.envDir))}/${checkTool(tool)}`;
export const envFilePath = (cfg: Config, tool: string, id: string) => `${envDirOf(cfg, tool)}/${checkInstanceId(id)}.env`;
export const logPath = (cfg: Config, tool: string, id: string) =>
  `${trim(checkUnitPath('log.dir', cfg.log.dir))}/${checkTool(tool)}-${checkInstanceId(id)}.log`;

/**
 * One ExecStart= argument, quoted for systemd: `%` → `%%` (specifiers) and `$` → `$$`
 * (variables), double quotes around anything with blanks or quotes, a lone `;` as `\;`.
 * Control characters cannot be expressed safely and are refused (naming `what`).
 */
export function systemdArg(arg: string, what = 'argument'): string {
  if (/[\x00-\x1f\x7f]/.test(arg)) throw new UsageError(`config: ${what} ${JSON.stringify(arg)} contains a control character`);
  if (arg === ';') return '\\;';
  const s = arg.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  if (s !== '' && !/[\s"'\\]/.test(s)) return s;
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** The template text: header, [Unit], [Service] with Restart=on-failure, log target, hardening. */
export function renderTemplate(cfg: Config, spec: UnitSpec): string {
  const tool = checkTool(spec.tool);
  const [bin, ...rest] = spec.execStart;
  if (typeof bin !== 'string') throw new Error('ExecStart must start with a binary path');
  checkUnitPath(`paths (${tool} binary)`, bin);
  for (const n of spec.env) if (!ENV_NAME.test(n)) throw new Error(`bad env name ${n}`);
  const words = [bin, ...rest.map((w) => {
    if (typeof w === 'string') return systemdArg(w, `${tool} argument`);
    if (!spec.env.includes(w.env)) throw new Error(`ExecStart uses \${${w.env}} but env does not list it`);
    return w.split ? `$${w.env}` : `\${${w.env}}`;
  })];
  const envFile = `${envDirOf(cfg, tool)}/%i.env`;
  const log =
    cfg.log.target === 'file'
      ? [`StandardOutput=append:${trim(checkUnitPath('log.dir', cfg.log.dir))}/${tool}-%i.log`, 'StandardError=inherit']
      : [
        'StandardOutput=journal',
        'StandardError=inherit',
        `SyslogIdentifier=${tool}@%i`,
        // Fields on every entry: a follower matches them per entry, so it sees instances started
        // after it began (`journalctl -u 'tool@*'` resolves its glob once, at start).
        `LogExtraFields=SNEAKPEEK_TOOL=${tool}`,
        'LogExtraFields=SNEAKPEEK_ID=%i',
        // journald's default (10000 lines per 30 s, scaled) drops lines of a burst of execs; 0
        // here means "journald's default", not "no limit".
        `LogRateLimitIntervalSec=${LOG_RATE_LIMIT.intervalSec}s`,
        `LogRateLimitBurst=${LOG_RATE_LIMIT.burst}`,
      ];
  return [
    MANAGED_HEADER,
    `# ${tool}@<ID>.service: ID = 12-hex-char container id; its values are in ${envFile.replace('%i', '<ID>')}.`,
    `# Set up: sneakpeek -t ${spec.type ?? tool} …   Tear down: sneakpeek -t ${spec.type ?? tool} --stop [--purge] …`,
    '[Unit]',
    `Description=${spec.description}`,
    `After=${['local-fs.target', ...(spec.after ?? [])].join(' ')}`,
    'StartLimitIntervalSec=60',
    'StartLimitBurst=5',
    '',
    '[Service]',
    'Type=simple',
    `EnvironmentFile=${envFile}`,
    `ExecStart=${words.join(' ')}`,
    'Restart=on-failure',
    'RestartSec=2',
    ...log,
    ...(spec.serviceExtra ?? []),
    ...spec.hardening,
    '',
  ].join('\n');
}

/** The env file body for known values (operator side); node steps build the same shape. */
export function renderEnvFile(values: Record<string, string>): string {
  const lines = [MANAGED_HEADER];
  for (const [k, v] of Object.entries(values)) {
    if (!ENV_NAME.test(k)) throw new Error(`bad env name ${k}`);
    if (!SAFE_VALUE.test(v)) throw new UsageError(`unsafe value for ${k}: ${JSON.stringify(v)}`);
    lines.push(`${k}=${v}`);
  }
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------
// Node steps: calls of the functions in scripts/bpftool_map_container_ns.sh, values quoted.

/**
 * Step: check the binaries and systemctl, then install `<tool>@.service` if missing or changed
 * (UNIT record). On failure every instance of this tool on the node fails with the reason.
 */
export function templateStep(cfg: Config, spec: UnitSpec, binaries: string[]): string {
  const tool = checkTool(spec.tool);
  const logDir = cfg.log.target === 'file' ? trim(checkUnitPath('log.dir', cfg.log.dir)) : '';
  return sh`sp_template ${tool} ${templatePath(cfg, tool)} ${renderTemplate(cfg, spec).replace(/\n$/, '')} ${logDir} ${binaries}`;
}

/** Step: write the env file of instance ID (literal, checked values) → sets up sp_start KEY. */
export function envStep(cfg: Config, key: number, tool: string, id: string, values: Record<string, string>): string {
  const pairs = Object.entries(values).map(([k, v]) => {
    if (!ENV_NAME.test(k)) throw new Error(`bad env name ${k}`);
    if (!SAFE_VALUE.test(v)) throw new UsageError(`unsafe value for ${k}: ${JSON.stringify(v)}`);
    return `${k}=${v}`;
  });
  return sh`sp_env ${key} ${checkTool(tool)} ${checkInstanceId(id)} ${envDirOf(cfg, tool)} ${pairs}`;
}

/** Step: daemon-reload once when a template changed; a failure fails every pending start. */
export const reloadStep = () => 'sp_daemon_reload';
export const startStep = (key: number) => `sp_start ${key}`;
export const settleStep = (keys: readonly number[]) => `sp_settle ${keys.join(' ')}`;

/** Step: teardown of one instance whose id is known here (from an inspect file). */
export function stopStep(cfg: Config, key: number, tool: string, id: string): string {
  return sh`sp_stop ${key} ${checkTool(tool)} ${checkInstanceId(id)} ${envDirOf(cfg, tool)}`;
}

/**
 * Step (--purge): remove the template unless other instances still use it (their env files
 * remain, or some are still loaded) → UNIT - FILE removed | kept | absent; then reloadStep().
 */
export function purgeStep(cfg: Config, tool: string): string {
  const t = checkTool(tool);
  return sh`sp_purge ${t} ${templatePath(cfg, t)} ${envDirOf(cfg, t)} ${trim(cfg.envDir)}`;
}

// ---------------------------------------------------------------------------------------
// Operator side: records → outcome per container.

export interface UnitOutcome {
  key: number;
  unit?: string;
  /** started | restarted | running | stopped | absent */
  action?: string;
  error?: string;
  warnings: string[];
  /** The other records of this key (NS, MAP, WATCH, …), in order. */
  extra: NodeRecord[];
}

export interface NodeUnitReport {
  outcomes: Map<number, UnitOutcome>;
  /** UNIT and PROG records: [file, state]. */
  templates: [string, string][];
  /** WARN - … records. */
  warnings: string[];
  /** BUSY: another run held the node's lock; nothing was changed. */
  busy?: string;
}

/** Collect one node's records for the given keys (messages decoded as UTF-8 text). */
export function collectUnitRecords(records: readonly NodeRecord[], keys: readonly number[]): NodeUnitReport {
  const outcomes = new Map<number, UnitOutcome>(keys.map((k) => [k, { key: k, warnings: [], extra: [] }]));
  const report: NodeUnitReport = { outcomes, templates: [], warnings: [] };
  for (const r of records) {
    if (r.key === '-') {
      if (r.tag === 'UNIT' || r.tag === 'PROG') report.templates.push([utf8(r.file), r.state]);
      else if (r.tag === 'WARN') report.warnings.push(utf8(r.message));
      else if (r.tag === 'BUSY') report.busy = utf8(r.message);
      continue;
    }
    const o = outcomes.get(Number(r.key));
    if (!o) continue;
    if (r.tag === 'OK') [o.unit, o.action] = [r.unit, r.action];
    else if (r.tag === 'ERR') o.error ??= utf8(r.message);
    else if (r.tag === 'WARN') o.warnings.push(utf8(r.message));
    else o.extra.push(r);
  }
  return report;
}

/** The first record of `tag` among an outcome's extras. */
export function extraOf<T extends Tag>(o: UnitOutcome | undefined, tag: T): RecordOf<T> | undefined {
  return o?.extra.find((r) => r.tag === tag) as RecordOf<T> | undefined;
}
