// `-t files` / `-t merged_dir` glue: turn a node's record stream into changes per container.
// No I/O here: records in, formatted lines and per-container outcomes out through callbacks.
import { ChangeComputer, emptyExtras, layerKey, parseListingRecord, parseXattrDump, splitLayerPath, unswapSlash, type Change, type Entry, type LayerExtras } from './diff.ts';
import { PodmanChangeComputer } from './diff-podman.ts';
import { diffModeOf, RUNTIME_PATHS, type DiffMode } from './runtime-rule.ts';
import { oneLine } from './errors.ts';
import { bytesField, utf8Latin1 } from './json-bytes.ts';
import { factsOfRecord, type ContainerFacts } from './inspect.ts';
import { parseRecord, utf8 } from './wire.ts';

export interface FilesTarget {
  key: number;
  /** How lines are labelled in cluster-wide runs, e.g. "10.0.0.3,0123456789ab". */
  label?: string;
  /** What the user named (container name or id), for messages. */
  name: string;
  /** Known up front when read from an inspect file. */
  facts?: ContainerFacts;
  /** The engine that knows it: which diff its lines follow (lib/runtime-rule.ts); default docker. */
  engine?: string;
  meta?: { pod?: string; namespace?: string; node?: string; container?: string; nodeIP?: string; id?: string };
}

export interface OutputOptions {
  chroot: boolean;
  json: boolean;
  nul: boolean;
  all: boolean;
}

const TYPE_NAMES: Record<string, string> = {
  f: 'file', d: 'dir', l: 'symlink', c: 'char', b: 'block', p: 'fifo', s: 'socket',
};

/** Host path under MergedDir, or the container path with --chroot. Paths stay latin1 (bytes). */
function shownPath(rel: string, facts: ContainerFacts | undefined, chroot: boolean): string {
  if (chroot) return `/${rel}`;
  // rel is latin1 (raw bytes); facts are text, so MergedDir is brought to the same form.
  const merged = Buffer.from(facts?.mergedDir ?? '', 'utf8').toString('latin1');
  return `${merged.replace(/\/$/, '')}/${rel}`;
}

export function formatChange(c: Change | { kind: null; path: string; entry?: Entry }, t: FilesTarget, o: OutputOptions): string {
  const path = shownPath(c.path, t.facts, o.chroot);
  const end = o.nul ? '\0' : '\n';
  if (o.json) {
    const e = c.entry;
    // Names are bytes: valid UTF-8 as itself, else U+FFFD text plus pathBytes (see json-bytes.ts).
    const obj: Record<string, unknown> = {
      kind: c.kind,
      ...bytesField('path', `/${c.path}`),
      // a container that is not running has no merged root on the host: no hostPath
      ...(t.facts?.mergedDir !== '' ? bytesField('hostPath', shownPath(c.path, t.facts, false)) : {}),
    };
    if (e) {
      obj.type = TYPE_NAMES[e.type];
      obj.size = e.size;
      obj.mode = e.mode.toString(8).padStart(4, '0');
      obj.mtime = new Date(e.mtimeSec * 1000 + Math.floor(e.mtimeNsec / 1e6)).toISOString();
    }
    if (t.label) Object.assign(obj, { container: t.name, ...t.meta });
    // The sink writes latin1 (one byte per char): hand it the UTF-8 bytes of the JSON text.
    return utf8Latin1(JSON.stringify(obj)) + end;
  }
  const line = c.kind ? `${c.kind} ${path}` : path;
  return (t.label ? `${t.label} ${line}` : line) + end;
}

interface State {
  target: FilesTarget;
  extras: LayerExtras;
  mode: DiffMode;
  computer?: { push(e: Entry): void; end(): void };
  error?: string;
  changes: number;
  done: boolean;
}

export interface FilesSink {
  /** One output line, already terminated; latin1 string (write with 'latin1'). */
  line(text: string): void;
  warn(target: FilesTarget, message: string): void;
}

/** Consumes one node's records for its targets; `finish()` returns each target's outcome. */
export class FilesConsumer {
  private states = new Map<number, State>();

  constructor(targets: readonly FilesTarget[], private readonly o: OutputOptions, private readonly sink: FilesSink) {
    for (const t of targets) this.states.set(t.key, { target: t, extras: emptyExtras(), mode: diffModeOf(t.engine ?? 'docker'), changes: 0, done: false });
  }

  /** The diff the target's engine gets (lib/runtime-rule.ts), made at its first listing entry. */
  private computer(s: State): NonNullable<State['computer']> {
    const emit = (c: Change) => {
      s.changes++;
      this.sink.line(formatChange(c, s.target, this.o));
    };
    // podman diff leaves out the runtime's paths after its diff
    const podmanEmit = (c: Change) => void (RUNTIME_PATHS.has(c.path) || emit(c));
    s.computer ??=
      s.mode === 'podman' ? new PodmanChangeComputer(s.extras, podmanEmit)
      : s.mode === 'podman-naive' ? new ChangeComputer(s.extras, podmanEmit)
      : new ChangeComputer(s.extras, emit, s.mode === 'runtime' ? RUNTIME_PATHS : undefined);
    return s.computer;
  }

  record(rec: string): void {
    if (rec.startsWith('F\t')) {
      const [key, entry] = parseListingRecord(rec);
      const s = this.states.get(key);
      if (s && !s.error) this.computer(s).push(entry);
      return;
    }
    const r = parseRecord(rec);
    if (!r || r.key === '-') return;
    const s = this.states.get(Number(r.key));
    if (!s || s.error) return;
    switch (r.tag) {
      case 'X':
        parseXattrDump(r.dump, s.extras);
        break;
      case 'R': {
        const where = splitLayerPath(r.path);
        if (where) s.extras.rdev.set(layerKey(...where), `${parseInt(r.major, 16)}:${parseInt(r.minor, 16)}`);
        break;
      }
      case 'M':
        s.changes++;
        this.sink.line(formatChange({ kind: null, path: unswapSlash(r.path) }, s.target, this.o));
        break;
      case 'FACTS':
        try {
          s.target.facts = factsOfRecord(r, s.target.name);
          if (!this.o.chroot && !this.o.all && !s.target.facts.mergedDir)
            this.sink.warn(s.target, `the container is ${s.target.facts.state || 'not running'}: its root is not mounted; paths are container paths`);
        } catch (err) {
          s.error = s.target.label ? oneLine(err) : `${s.target.name}: ${oneLine(err)}`;
        }
        break;
      case 'ENGINE':
        s.mode = diffModeOf(r.engine, r.diff);
        break;
      case 'DONE':
        s.done = true;
        break;
      case 'ERR':
        // A labelled (cluster) target is already named by its label: NODE,CONTAINERID12.
        s.error = s.target.label ? utf8(r.message) : `${s.target.name}: ${utf8(r.message)}`;
        break;
      case 'WARN':
        this.sink.warn(s.target, utf8(r.message));
        break;
    }
  }

  /** End of the node's stream: flush, and say which targets failed and why. */
  finish(nodeFailure?: string): { target: FilesTarget; error?: string; changes: number }[] {
    return [...this.states.values()].map((s) => {
      s.computer?.end();
      // A labelled (cluster) target is named by its label; a single one by its name.
      const why = nodeFailure ?? "the node's listing ended early";
      const error = s.error ?? (s.done ? undefined : s.target.label ? why : `${s.target.name}: ${why}`);
      return { target: s.target, error, changes: s.changes };
    });
  }
}

