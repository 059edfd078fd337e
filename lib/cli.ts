// The yargs setup every script shares (pure: builds a parser, runs nothing, reads nothing).
// yargs is loaded only here, after a tool's --help check (wantsHelp): it is a third of start-up.
import { loadYaml } from './config.ts';
import { oneLine, UsageError } from './errors.ts';

/**
 * -h or --help as an argument of its own (before `--`): the tool prints its help before loading
 * yargs. Anything else (`-vh`) still reaches yargs' help flag, and a tool checks `args.help` too.
 */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === '--') return false;
    if (a === '-h' || a === '--help') return true;
  }
  return false;
}

/**
 * yargs that never exits, never prints its own help, and turns every parse failure into a
 * UsageError; with the options every script has: --config, --timeout, --transport, -q/--quiet, -v/--verbose,
 * -h/--help.
 */
export async function cli(argv: string[], scriptName: string) {
  // The config's YAML parser too: every run past --help reads a config next.
  const [{ default: yargs }] = await Promise.all([import('yargs'), loadYaml()]);
  const y = yargs(argv)
    .scriptName(scriptName)
    .help(false)
    .version(false)
    .strict()
    .exitProcess(false)
    .parserConfiguration({ 'strip-aliased': true });
  return y
    // Repeatable options (array: true, like -e POD) collect every value; any other option given
    // twice is a usage error, and so is `-f` with nothing after it (not an empty file name).
    .middleware((args) => {
      // getOptions() is yargs API that its type definitions leave out.
      const arrays = new Set((y as unknown as { getOptions(): { array: string[] } }).getOptions().array);
      for (const [k, v] of Object.entries(args)) {
        if (k === '_' || k === '$0' || k === '--') continue;
        if (Array.isArray(v) && !arrays.has(k)) throw new UsageError(`--${k} given more than once`);
        if (v === '' && k.length > 1) throw new UsageError(`--${k} needs a value`);
      }
    }, true)
    .fail((msg, err) => {
      throw err instanceof UsageError ? err : new UsageError(msg || oneLine(err));
    })
    .option('config', { type: 'string' })
    // A number of seconds, checked like the config key it overrides (timeouts.<job>).
    .option('timeout', { type: 'string', nargs: 1 })
    // ssh | kubectl, checked like the config key it overrides (transport).
    .option('transport', { type: 'string', nargs: 1 })
    .option('quiet', { alias: 'q', type: 'boolean', default: false })
    .option('verbose', { alias: 'v', type: 'boolean', default: false })
    .option('help', { alias: 'h', type: 'boolean', default: false });
}

/** A `-v` anywhere in argv, seen before parsing so even a parse error can be verbose. */
export const wantsVerbose = (argv: readonly string[]) => argv.includes('-v') || argv.includes('--verbose');
