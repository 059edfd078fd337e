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
  private pending: Buffer[] = [];

  push(chunk: Buffer, onRecord: (rec: string) => void): void {
    let start = 0;
    for (;;) {
      const i = chunk.indexOf(0, start);
      if (i < 0) break;
      const part = chunk.subarray(start, i);
      if (this.pending.length) {
        this.pending.push(part);
        onRecord(Buffer.concat(this.pending).toString('latin1'));
        this.pending = [];
      } else {
        onRecord(part.toString('latin1'));
      }
      start = i + 1;
    }
    if (start < chunk.length) this.pending.push(Buffer.from(chunk.subarray(start)));
  }

  /** Bytes left without a terminating NUL: a truncated stream. */
  get leftover(): number {
    return this.pending.reduce((n, b) => n + b.length, 0);
  }
}

/** Re-read a latin1-decoded field as UTF-8 text. */
export function utf8(field: string): string {
  return Buffer.from(field, 'latin1').toString('utf8');
}
