// Assemble the POSIX sh script that runs on a node (pure: texts in, text out; lib/io/node-files.ts
// reads the .sh files). A node script is, in order:
//   1. the config values the node functions read, one `SP_NAME=value` line each (quoted);
//   2. lib/node-script.sh: rec, the scratch dir, traps, the watchdog, sp_lock;
//   3. the tools' function files (scripts/<tool>.sh) the steps call;
//   4. the steps: one line per container (or per node task), values quoted by lib/quote.ts (`sh`).
// Records come back as lib/wire.ts says.
import type { Config } from './config.ts';
import { shQuote } from './quote.ts';
import { MANAGED_HEADER } from './units.ts';

/** The function files in scripts/ a node script can be built from (scripts/<lib>.sh). */
export const NODE_LIBS = ['get_container_ns', 'bpftool_map_container_ns', 'sneakpeek', 'sneakpeek/events'] as const;
export type NodeLib = (typeof NODE_LIBS)[number];

/** The config values the node functions read, as `SP_…` shell variables. */
export function configVars(cfg: Config): Record<string, string | number> {
  return {
    SP_DOCKER: cfg.paths.docker,
    SP_PODMAN: cfg.paths.podman,
    SP_CRICTL: cfg.paths.crictl,
    SP_CTR: cfg.paths.ctr,
    SP_CTR_ADDRESS: cfg.containerd.address,
    SP_CTR_NAMESPACE: cfg.containerd.namespace,
    SP_BPFTOOL: cfg.paths.bpftool,
    SP_LOCK: cfg.lock.file,
    SP_LOCK_WAIT: cfg.lock.wait,
    SP_HEADER: MANAGED_HEADER,
  };
}

export interface NodeScriptTexts {
  /** lib/node-script.sh */
  preamble: string;
  /** The function files, already chosen and in order. */
  libs: readonly string[];
}

/** The whole script: config lines, preamble, function files, the steps, `exit` (nothing more is read). */
export function assembleNodeScript(texts: NodeScriptTexts, cfg: Config, steps: readonly string[]): string {
  const vars = Object.entries(configVars(cfg)).map(([k, v]) => `${k}=${shQuote(v)}`);
  return [
    '# sneakpeek node script (generated): run with `timeout … sh -s` on the node',
    ...vars,
    texts.preamble.trimEnd(),
    ...texts.libs.map((t) => t.trimEnd()),
    '# ---- steps',
    ...steps,
    'exit 0',
    '',
  ].join('\n');
}
