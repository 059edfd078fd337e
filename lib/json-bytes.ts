// Byte strings (file names) in JSON output. Pure.
//
// Names on Linux are bytes, not text; JSON is UTF-8 text. A name that is valid UTF-8 appears as
// itself (`"path":"/tmp/été ☃"`). A name that is not gets its text form with each invalid byte
// replaced by U+FFFD — exactly what docker's API and `docker diff` show for it — and, so that
// nothing is lost, an extra field `<name>Bytes` with the raw bytes in base64:
//   {"path":"/tmp/bad\ufffd\ufffdname","pathBytes":"L3RtcC9iYWT//m5hbWU=", …}
// Why base64 beside the text rather than \x-escapes inside it: every valid name stays
// byte-for-byte itself with no second escaping to undo (with \x-escapes a name that contains a
// literal `\x41` would be ambiguous, unless every backslash were escaped too, which changes valid
// names); the bytes decode with any standard tool (`jq -r .pathBytes | base64 -d`); and the field
// is there only when needed, so `jq 'select(.pathBytes)'` finds every such name.
//
// Field values arrive as latin1 strings (one char per byte, see lib/wire.ts).
import { isUtf8 } from 'node:buffer';

const ASCII = /^[\x00-\x7f]*$/;

/** The UTF-8 reading of `bytes`, each byte of an invalid sequence one U+FFFD (as Go, and so docker, does). */
export function textOf(bytes: Buffer): string {
  if (isUtf8(bytes)) return bytes.toString('utf8');
  let out = '';
  let start = 0; // start of the run of valid bytes not yet copied
  let i = 0;
  while (i < bytes.length) {
    const n = validSequence(bytes, i);
    if (n) {
      i += n;
      continue;
    }
    out += bytes.subarray(start, i).toString('utf8') + '\ufffd';
    start = ++i;
  }
  return out + bytes.subarray(start).toString('utf8');
}

/** Length of the valid UTF-8 sequence at i (Unicode Table 3-7: no overlongs, surrogates or > U+10FFFF), or 0. */
function validSequence(b: Buffer, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < b.length && b[i + k]! >= lo && b[i + k]! <= hi;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    const [lo, hi] = c === 0xe0 ? [0xa0, 0xbf] : c === 0xed ? [0x80, 0x9f] : [0x80, 0xbf];
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const [lo, hi] = c === 0xf0 ? [0x90, 0xbf] : c === 0xf4 ? [0x80, 0x8f] : [0x80, 0xbf];
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

/**
 * `{ [key]: text }` for a latin1 field that is valid UTF-8; `{ [key]: text with U+FFFD,
 * [key + 'Bytes']: base64 }` for one that is not.
 */
export function bytesField(key: string, latin1: string): Record<string, string> {
  if (ASCII.test(latin1)) return { [key]: latin1 };
  const bytes = Buffer.from(latin1, 'latin1');
  if (isUtf8(bytes)) return { [key]: bytes.toString('utf8') };
  return { [key]: textOf(bytes), [`${key}Bytes`]: bytes.toString('base64') };
}

/** A JSON line (JS text) as the latin1 string of its UTF-8 bytes, for a sink that writes latin1. */
export const utf8Latin1 = (text: string): string => (ASCII.test(text) ? text : Buffer.from(text, 'utf8').toString('latin1'));
