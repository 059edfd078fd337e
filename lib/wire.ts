// The node wire format, written down once. A node script (lib/node-script.sh and the tools'
// scripts/<tool>.sh) answers on stdout with records: NUL-terminated, TAB-separated fields, tag
// first, then the KEY (the container's number in this run, or '-' for the node itself). The
// last field of a record may hold any byte but NUL (paths with tabs and newlines). Records
// decode as latin1 so every byte survives (file names need not be UTF-8); `utf8()` reads a
// text field (a message, JSON) and paths are written back as latin1.
//
// RECORDS names every tag's fields, in order; `parseRecord` gives them back by name.

export const RECORDS = {
  // every node script
  ERR: ['key', 'message'], //                     this container failed; the rest go on
  WARN: ['key', 'message'], //                    worth telling; not a failure
  BUSY: ['key', 'message'], //                    another run holds the node's lock (sp_lock)
  // get_container_ns.sh
  FACTS: ['key', 'id', 'state', 'pid', 'driver', 'upper', 'lower', 'merged'], // what the engine says
  NS: ['key', 'id', 'pid', 'inode'], //            the main process's mount-namespace inode
  ENGINE: ['key', 'engine', 'diff'], //           the engine that answered (containerd: crictl|ctr); podman's diff: native|naive
  // sneakpeek.sh, -t files / merged_dir
  // A layer path is NNN/PATH: PATH in layer NNN (000 = upper, 001.. = the lower layers).
  F: ['key', 'type', 'mode', 'uid', 'gid', 'size', 'mtime', 'path'], // one entry of a layer ('/' ⇄ \001)
  X: ['key', 'dump'], //                          getfattr -d dump of layer paths
  R: ['key', 'major', 'minor', 'path'], //         device numbers (hex) of a char/block device
  M: ['key', 'path'], //                          one path of the merged view (--all)
  DONE: ['key'], //                               the container's listing is complete
  // sneakpeek.sh, -t fswatch / procmon / tcptracer
  WATCH: ['key', 'upper', 'dirs', 'imageDirs'], // what fswatch@ID watches
  INOTIFY: ['key', 'watches', 'instances'], //    the node's inotify limits
  PROG: ['key', 'file', 'state'], //              a bpftrace program: created|updated|unchanged|removed
  // sneakpeek.sh, --status / --reconcile (lib/lifecycle.ts); KEY i<ID> = an instance found on the node
  INST: ['key', 'tool', 'id', 'load', 'active', 'sub', 'hasEnv', 'env'], // systemd's view (load '-': not loaded) and the env file (hasEnv 0|1)
  UNITSTART: ['key', 'start', 'envMtime'], //    an active unit: when its main process started, when its env file was written (µs since the epoch; '' unknown)
  GONE: ['key', 'engine', 'gone', 'message'], //  the engine has no such container (gone 1) or did not answer (0)
  MAPKEYS: ['key', 'file', 'state', 'order', 'dump'], // a map read, not changed: present|absent|error; dump = bpftool -j
  LASTLOG: ['key', 'line'], //                    the last log line of a unit that is not active
  // scripts/sneakpeek/events.sh (--events)
  EVSRC: ['key', 'tool', 'id', 'env'], //        a source: unit TOOL@<id's first 12>, its env file now ('' = no instance)
  EV: ['key', 'pos', 'usec', 'message'], //      one line a unit logged; pos = where to resume after it (cursor | INODE:OFFSET)
  EVSINCE: ['key', 'epoch'], //                  --since as this node's clock made it (a reconnect starts from the same instant)
  EVEND: ['key'], //                             the read is complete (none: the session was cut)
  // bpftool_map_container_ns.sh
  MAP: ['key', 'file', 'state', 'order', 'pruned', 'dump'], // state created|added|present; dump = bpftool -j
  MAPGONE: ['key', 'file', 'state'], //           removed | absent | kept (another tool still uses it)
  UNIT: ['key', 'file', 'state'], //              a template: created|updated|unchanged|removed|kept|absent
  RELOAD: ['key'], //                             systemctl daemon-reload ran
  OK: ['key', 'unit', 'action'], //               started|restarted|running (setup), stopped|absent (teardown)
} as const;

export type Tag = keyof typeof RECORDS;
export type RecordOf<T extends Tag> = { tag: T } & { [F in (typeof RECORDS)[T][number]]: string };
export type NodeRecord = { [T in Tag]: RecordOf<T> }[Tag];

/** One record, its fields by name (latin1 strings); undefined for a tag not in RECORDS. */
export function parseRecord(rec: string): NodeRecord | undefined {
  const tab = rec.indexOf('\t');
  const tag = (tab < 0 ? rec : rec.slice(0, tab)) as Tag;
  const names = Object.hasOwn(RECORDS, tag) ? RECORDS[tag] : undefined;
  if (!names) return undefined;
  const values = tab < 0 ? [] : splitFields(rec.slice(tab + 1), names.length);
  const out: Record<string, string> = { tag };
  names.forEach((n, i) => (out[n] = values[i] ?? ''));
  return out as NodeRecord;
}

/** Every record of a whole node answer, by name (for the tools that read a short answer at once). */
export function parseRecords(stdout: Buffer): NodeRecord[] {
  const out: NodeRecord[] = [];
  new RecordSplitter().push(stdout, (rec) => {
    const r = parseRecord(rec);
    if (r) out.push(r);
  });
  return out;
}

/** Split one record into at most `maxFields` fields (the last keeps its tabs). */
export function splitFields(rec: string, maxFields = Infinity): string[] {
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
