// systemd template units for the monitoring types (fswatch@, execsnoop@, tcptracer@, …):
// render a template from config, and the node-side sh that installs, starts and tears down
// its instances. Pure: strings in, strings out; scripts/sneakpeek/<type>.ts assembles and runs.
//
// Shape (the same for every tool):
//   <cfg.unitDir>/<tool>@.service        the template, rendered from config, one per node;
//                                         never changes per container
//   <cfg.envDir>/<tool>/<ID>.env          per-instance values (UpperDir, map file, inode…),
//                                         read through EnvironmentFile=
//   <tool>@<ID>.service                  the instance; ID = the 12-hex-char container id
//   <cfg.log.dir>/<tool>-<ID>.log         with log.target: file (else the journal)
//
// Node script (one per node; build with nodeScript([...unitDefs(), …], steps)):
//   templateStep(cfg, spec)             install/update the template if missing or changed
//   <tool-specific step per container>  find the values, then instanceStep(): env file
//   reloadStep()                        systemctl daemon-reload, once, only if a template changed
//   startStep(key) per container        start (or restart when its env/template changed)
//   settleStep(keys)                    one short wait, then each instance must still be
//                                       active → `OK KEY UNIT ACTION`, else ERR with its status
// Teardown: stopStep(key, …) per container, purgeStep(cfg, tool) (templates), reloadStep().
//
// Records (lib/wire.ts) this machinery writes; KEY `-` is the node itself:
//   OK KEY UNIT ACTION          ACTION: started | restarted | running (setup) ·
//                                       stopped | absent (teardown)
//   ERR KEY MESSAGE             that container failed; the others go on
//   WARN KEY MESSAGE            worth telling; not a failure
//   UNIT - FILE STATE           a template: created | updated | unchanged | removed | kept | absent
//
// Node-side shell state: $sp_reload (1 when a daemon-reload is due), $sp_tpl_<tool> (why the
// template is unusable; empty = fine), $sp_u_<KEY> ("UNIT CHANGED": set by instanceStep).
import type { Config } from './config.ts';
import { UsageError } from './errors.ts';
import { shQuote } from './quote.ts';

export const MANAGED_HEADER = '# managed by sneakpeek — do not edit: sneakpeek rewrites this file from sneakpeek.config.yaml';

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
      : ['StandardOutput=journal', 'StandardError=inherit', `SyslogIdentifier=${tool}@%i`];
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
// Node-side sh. Every value comes through shQuote; node-found values are checked there.

const ID_GLOB = '[0-9a-f]'.repeat(12);

const PUT_FN = `# sp_put FILE CONTENT MODE: write FILE (CONTENT plus a newline) only when it differs.
# Sets $sp_put to created|updated|unchanged; on failure returns 1 with the reason in $sp_err.
sp_put() {
  if [ -f "$1" ] && [ "$(cat -- "$1" 2>/dev/null; printf x)" = "$2
x" ]; then sp_put=unchanged; return 0; fi
  if [ -e "$1" ]; then sp_put=updated; else sp_put=created; fi
  if ! sp_err=$( (umask 077; printf '%s\\n' "$2" > "$1.sp-new" && chmod "$3" "$1.sp-new" && mv -f -- "$1.sp-new" "$1") 2>&1); then
    rm -f -- "$1.sp-new"; sp_err=$(lastline "$sp_err"); [ -n "$sp_err" ] || sp_err="cannot write $1"; return 1
  fi
}`;

const ENV_FN = `# sp_env KEY TOOL ID ENVDIR NAME=VALUE…: write ENVDIR/ID.env; sets $sp_u_KEY="UNIT CHANGED".
sp_env() {
  k=$1 tool=$2 id=$3 d=$4 f="$4/$3.env"; shift 4
  case $id in ${ID_GLOB}) ;;
    *) rec ERR "$k" "bad container id '$id' (want 12 hex characters)"; return 1 ;; esac
  eval "tplerr=\\\${sp_tpl_$tool-template step missing} ch=\\\${sp_tch_$tool-0}"
  if [ -n "$tplerr" ]; then rec ERR "$k" "$tplerr"; return 1; fi
  body=${shQuote(MANAGED_HEADER)}
  bad='*[!A-Za-z0-9._+@:,=/ -]*'
  for kv in "$@"; do
    v=\${kv#*=}
    case $v in $bad|' '*|*' ') rec ERR "$k" "refusing \${kv%%=*} '$v': only letters, digits, single blanks and ._+@:,=/- go into unit env files"; return 1 ;; esac
    body="$body
$kv"
  done
  if ! mkdir -p -- "$d" 2>/dev/null; then rec ERR "$k" "cannot create $d"; return 1; fi
  if ! sp_put "$f" "$body" 0600; then rec ERR "$k" "$sp_err"; return 1; fi
  [ "$sp_put" = unchanged ] || ch=1
  eval "sp_u_$k=\\"\\$tool@\\$id.service \\$ch\\""
}`;

const START_FN = `# sp_start KEY: start the instance prepared by sp_env (restart if running and changed).
sp_start() {
  eval "st=\\\${sp_u_$1-}"
  [ -n "$st" ] || return 0
  u=\${st% *} ch=\${st#* } out= rc=0
  if [ -n "$sp_reload_err" ]; then rec ERR "$1" "$sp_reload_err"; eval "sp_u_$1="; return 1; fi
  if systemctl is-active --quiet "$u"; then
    act=running
    if [ "$ch" = 1 ]; then act=restarted; out=$(systemctl restart "$u" 2>&1) || rc=1; fi
  else
    systemctl reset-failed "$u" >/dev/null 2>&1
    act=started; out=$(systemctl start "$u" 2>&1) || rc=1
  fi
  if [ $rc -ne 0 ]; then rec ERR "$1" "$u: $(lastline "$out")"; eval "sp_u_$1="; return 1; fi
  eval "sp_a_$1=$act"
  [ "$act" = running ] || sp_started=1
}`;

const SETTLE_FN = `# sp_settle KEY…: after one short wait, every started instance must still be active.
sp_settle() {
  [ "$sp_started" = 1 ] && sleep 1
  for k in "$@"; do
    eval "st=\\\${sp_u_$k-} act=\\\${sp_a_$k-}"
    [ -n "$st" ] && [ -n "$act" ] || continue
    u=\${st% *}
    if systemctl is-active --quiet "$u"; then rec OK "$k" "$u" "$act"
    else rec ERR "$k" "$u did not stay up: $(systemctl status --no-pager -n 3 "$u" 2>&1 | tr '\\n' ' ' | tr -s ' ' | cut -c1-400)"
    fi
  done
}`;

const STOP_FN = `# sp_stop KEY TOOL ID ENVDIR: stop the instance, forget its failures, remove ENVDIR/ID.env.
sp_stop() {
  k=$1 u="$2@$3.service" f="$4/$3.env"
  case $3 in ${ID_GLOB}) ;;
    *) rec ERR "$k" "bad container id '$3' (want 12 hex characters)"; return 1 ;; esac
  act=absent
  if systemctl is-active --quiet "$u" || systemctl is-failed --quiet "$u"; then
    if ! out=$(systemctl stop "$u" 2>&1); then rec ERR "$k" "$u: $(lastline "$out")"; return 1; fi
    act=stopped
  fi
  systemctl reset-failed "$u" >/dev/null 2>&1
  if [ -e "$f" ]; then
    if ! out=$(rm -f -- "$f" 2>&1); then rec ERR "$k" "$(lastline "$out")"; return 1; fi
    act=stopped
  fi
  rmdir -- "$4" 2>/dev/null
  rec OK "$k" "$u" "$act"
}`;

/** Definitions every unit node script needs (pass to nodeScript along with the tool's own). */
export function unitDefs(): string[] {
  return [PUT_FN, ENV_FN, START_FN, SETTLE_FN, STOP_FN, 'sp_reload=0 sp_reload_err= sp_started=0'];
}

/**
 * Step: check the binaries and systemctl, then install `<tool>@.service` if missing or changed
 * (UNIT record). On failure every instance of this tool on the node fails with the reason.
 */
export function templateStep(cfg: Config, spec: UnitSpec, binaries: string[]): string {
  const tool = checkTool(spec.tool);
  const file = templatePath(cfg, tool);
  const dir = file.slice(0, file.lastIndexOf('/')) || '/';
  const checks = binaries
    .map((b) => `elif [ ! -x ${shQuote(b)} ]; then sp_tpl_${tool}=${shQuote(`${b} not found on this node (config paths)`)}`)
    .join('\n');
  const logDir = cfg.log.target === 'file' ? trim(checkUnitPath('log.dir', cfg.log.dir)) : '';
  return `# template ${templateName(tool)}
sp_tpl_${tool}= sp_tch_${tool}=0
if ! command -v systemctl >/dev/null 2>&1; then sp_tpl_${tool}='systemctl not found on this node (systemd required)'
${checks}
elif ! mkdir -p -- ${shQuote(dir)} 2>/dev/null; then sp_tpl_${tool}=${shQuote(`cannot create ${dir}`)}
${logDir ? `elif ! (umask 027; mkdir -p -- ${shQuote(logDir)}) 2>/dev/null; then sp_tpl_${tool}=${shQuote(`cannot create log dir ${logDir}`)}\n` : ''}elif ! sp_put ${shQuote(file)} ${shQuote(renderTemplate(cfg, spec).replace(/\n$/, ''))} 0644; then sp_tpl_${tool}=$sp_err
else
  rec UNIT - ${shQuote(file)} "$sp_put"
  if [ "$sp_put" != unchanged ]; then sp_reload=1 sp_tch_${tool}=1; fi
fi`;
}

/** A per-instance value found on the node: the name of a sh variable set by an earlier step. */
export interface ShVar {
  shVar: string;
}

function envWord(name: string, v: string | ShVar): string {
  if (!ENV_NAME.test(name)) throw new Error(`bad env name ${name}`);
  if (typeof v === 'string') {
    if (!SAFE_VALUE.test(v)) throw new UsageError(`unsafe value for ${name}: ${JSON.stringify(v)}`);
    return shQuote(`${name}=${v}`);
  }
  return `"${name}=${shWordOf(v)}"`;
}

function shWordOf(v: ShVar): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(v.shVar)) throw new Error(`bad sh variable ${v.shVar}`);
  return `$${v.shVar}`;
}

/** The id argument of a step: a literal 12-hex id, or a sh variable holding one (checked on the node). */
function idWord(id: string | ShVar): string {
  return typeof id === 'string' ? checkInstanceId(id) : `"${shWordOf(id)}"`;
}

/**
 * Step: write the env file of instance ID for container KEY. Values are literal strings or
 * sh variables set by the tool's own step (e.g. {shVar: 'sp_upper'}); both are checked.
 */
export function instanceStep(cfg: Config, key: number, tool: string, id: string | ShVar, values: Record<string, string | ShVar>): string {
  const pairs = Object.entries(values).map(([k, v]) => envWord(k, v));
  return `sp_env ${key} ${checkTool(tool)} ${idWord(id)} ${shQuote(envDirOf(cfg, tool))} ${pairs.join(' ')}`;
}

/** Step: daemon-reload once when a template changed; a failure fails every pending start. */
export function reloadStep(): string {
  return `if [ "$sp_reload" = 1 ]; then
  if out=$(systemctl daemon-reload 2>&1); then sp_reload=0; rec RELOAD -
  else sp_reload_err="systemctl daemon-reload failed: $(lastline "$out")"; fi
fi`;
}

export const startStep = (key: number) => `sp_start ${key}`;
export const settleStep = (keys: readonly number[]) => `sp_settle ${keys.join(' ')}`;

/** Step: teardown of one instance (its id literal, or a sh variable set by an earlier step). */
export function stopStep(cfg: Config, key: number, tool: string, id: string | ShVar): string {
  return `sp_stop ${key} ${checkTool(tool)} ${idWord(id)} ${shQuote(envDirOf(cfg, tool))}`;
}

/**
 * Step (--purge): remove the template unless other instances still use it (their env files
 * remain, or some are still loaded) → UNIT - FILE removed | kept | absent; then reloadStep().
 */
export function purgeStep(cfg: Config, tool: string): string {
  const t = checkTool(tool);
  const file = templatePath(cfg, t);
  const envDir = envDirOf(cfg, t);
  return `# purge ${templateName(t)}
others=$(ls -- ${shQuote(envDir)} 2>/dev/null | grep -c '[.]env$')
busy=$(systemctl list-units --all --plain --no-legend ${shQuote(`${t}@*.service`)} 2>/dev/null | awk '$3 == "active" || $3 == "activating" || $3 == "reloading" { n++ } END { print n + 0 }')
if [ ! -e ${shQuote(file)} ]; then rec UNIT - ${shQuote(file)} absent
elif [ "$others" -gt 0 ] || [ "$busy" -gt 0 ]; then
  rec UNIT - ${shQuote(file)} kept
  rec WARN - "template ${file} kept: $others other instance(s) still configured, $busy running"
elif out=$(rm -f -- ${shQuote(file)} 2>&1); then rec UNIT - ${shQuote(file)} removed; sp_reload=1
else rec WARN - "cannot remove ${file}: $(lastline "$out")"
fi
rmdir -- ${shQuote(envDir)} 2>/dev/null
rmdir -- ${shQuote(trim(cfg.envDir))} 2>/dev/null
:`;
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
  /** Tool-specific records for this key, by tag (e.g. WATCH). */
  extra: Map<string, string[][]>;
}

export interface NodeUnitReport {
  outcomes: Map<number, UnitOutcome>;
  /** UNIT records: [file, state]. */
  templates: [string, string][];
  /** WARN - … records. */
  warnings: string[];
}

/** Collect one node's records (already split into fields) for the given keys. */
export function collectUnitRecords(records: readonly string[][], keys: readonly number[]): NodeUnitReport {
  const outcomes = new Map<number, UnitOutcome>(keys.map((k) => [k, { key: k, warnings: [], extra: new Map() }]));
  const report: NodeUnitReport = { outcomes, templates: [], warnings: [] };
  for (const f of records) {
    const [tag, key, ...rest] = f;
    if (key === '-') {
      if (tag === 'UNIT') report.templates.push([rest[0] ?? '', rest[1] ?? '']);
      else if (tag === 'WARN') report.warnings.push(rest.join('\t'));
      continue;
    }
    const o = outcomes.get(Number(key));
    if (!o) continue;
    if (tag === 'OK') [o.unit, o.action] = [rest[0], rest[1]];
    else if (tag === 'ERR') o.error ??= rest.join('\t');
    else if (tag === 'WARN') o.warnings.push(rest.join('\t'));
    else if (tag) {
      const list = o.extra.get(tag) ?? [];
      list.push(rest);
      o.extra.set(tag, list);
    }
  }
  return report;
}
