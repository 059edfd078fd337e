// The node-script wire format: NUL-terminated records, TAB-separated fields, tag first.
// The last field of a record may hold any byte but NUL (paths with tabs and newlines).
// Records decode as latin1 so every byte survives (file names need not be UTF-8); use
// `utf8()` on fields that are text (messages, JSON) and write paths back as latin1.
//
//   OK\t<key>\t<field>...      a result for one container / item
//   ERR\t<key>\t<message>      one item failed; the rest of the script goes on
//   WARN\t<key>\t<message>     something the user should know; not a failure
//   ...                        other tags belong to the command that wrote the script

export type Record = string[];

/** Split one record into at most `maxFields` fields (the last keeps its tabs). */
export function splitFields(rec: string, maxFields = Infinity): Record {
  const out: string[] = [];
  let start = 0;
  while (out.length < maxFields - 1) {
    const i = rec.indexOf('\t', start);
    if (i < 0) break;
    out.push(rec.slice(start, i));
    start = i + 1;
  }
  out.push(rec.slice(start));
  return out;
}

/** Feed chunks, get whole NUL-terminated records back, in order; constant memory per record. */
export class RecordSplitter {
  // latin1 maps byte i to char i, so splitting the decoded chunk at '\0' is splitting the bytes.
  private pending = '';

  push(chunk: Buffer, onRecord: (rec: string) => void): void {
    const text = chunk.toString('latin1');
    let start = 0;
    for (;;) {
      const i = text.indexOf('\0', start);
      if (i < 0) break;
      if (this.pending) {
        onRecord(this.pending + text.slice(start, i));
        this.pending = '';
      } else {
        onRecord(text.slice(start, i));
      }
      start = i + 1;
    }
    if (start < text.length) this.pending += text.slice(start);
  }

  /** Bytes left without a terminating NUL: a truncated stream. */
  get leftover(): number {
    return this.pending.length;
  }
}

/** Re-read a latin1-decoded field as UTF-8 text. */
export function utf8(field: string): string {
  return Buffer.from(field, 'latin1').toString('utf8');
}
