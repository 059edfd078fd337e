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
