// The one quoting helper. Every value that reaches a shell — a local command line, an ssh
// remote command, or a generated node script — goes through shQuote. Names are data.

/** Quote one value for POSIX sh: wrap in single quotes, close-escape-reopen any quote inside. */
export function shQuote(value: string | number): string {
  const s = String(value);
  if (s.includes('\0')) throw new Error('a value for the shell contains a NUL byte');
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) && !s.startsWith('-')) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Join already-separate arguments into one safe command line. */
export function shJoin(args: readonly (string | number)[]): string {
  return args.map(shQuote).join(' ');
}

/**
 * A node-script line with its values quoted: sh`sp_ns 0 ${engine} ${name}` →
 * `sp_ns 0 docker 'my web'`. Numbers are written as they are; arrays become several words.
 */
export function sh(parts: TemplateStringsArray, ...values: (string | number | readonly (string | number)[])[]): string {
  let out = parts[0]!;
  values.forEach((v, i) => {
    out += (Array.isArray(v) ? (v as (string | number)[]).map(shQuote).join(' ') : shQuote(v as string | number)) + parts[i + 1]!;
  });
  return out;
}
