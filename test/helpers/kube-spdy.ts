// SPDY/3.1, server side, by hand: the exec stream kubectl falls back to when the WebSocket
// upgrade fails (or with KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false). The API server then only
// proxies the upgrade to the kubelet, so this is the kubelet's side: remotecommand over SPDY,
// v4.channel.k8s.io (the kubelet's newest; kubectl offers v5 first), one SPDY stream per
// channel — the client opens error, stdin, stdout, stderr with SYN_STREAM (header
// `streamtype`), the server answers each with SYN_REPLY. Header blocks are zlib with the
// SPDY/3 dictionary, one compression context per direction. kubectl's client (spdystream)
// does no flow control (WINDOW_UPDATE is ignored both ways), so backpressure is TCP's.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import zlib from 'node:zlib';
import { CH, ExecProcess, newRecord, nodeArgv, type ExecOptions, type ExecRequest, type ExecSink } from './kube-exec.ts';

type Obj = Record<string, unknown>;

// The header-compression dictionary of SPDY/3 (draft-mbelshe-httpbis-spdy-00 §2.6.10.1):
// length-prefixed header names and values, then common value text.
const DICT_WORDS = [
  'options', 'head', 'post', 'put', 'delete', 'trace', 'accept', 'accept-charset', 'accept-encoding', 'accept-language',
  'accept-ranges', 'age', 'allow', 'authorization', 'cache-control', 'connection', 'content-base', 'content-encoding',
  'content-language', 'content-length', 'content-location', 'content-md5', 'content-range', 'content-type', 'date', 'etag',
  'expect', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range', 'if-unmodified-since',
  'last-modified', 'location', 'max-forwards', 'pragma', 'proxy-authenticate', 'proxy-authorization', 'range', 'referer',
  'retry-after', 'server', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'user-agent', 'vary', 'via', 'warning',
  'www-authenticate', 'method', 'get', 'status', '200 OK', 'version', 'HTTP/1.1', 'url', 'public', 'set-cookie', 'keep-alive', 'origin',
];
const DICT_TAIL =
  '100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505' +
  '203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized403 Forbidden' +
  '404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable' +
  'Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT' +
  'chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,' +
  'publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.';

export const SPDY_DICTIONARY = Buffer.concat([
  ...DICT_WORDS.map((w) => {
    const b = Buffer.alloc(4 + w.length);
    b.writeUInt32BE(w.length, 0);
    b.write(w, 4, 'latin1');
    return b;
  }),
  Buffer.from(DICT_TAIL, 'latin1'),
]);

export const FRAME = { synStream: 1, synReply: 2, rstStream: 3, settings: 4, ping: 6, goAway: 7, headers: 8, windowUpdate: 9 } as const;
const FLAG_FIN = 0x01;
const VERSION = 3;

export type SpdyFrame =
  | { control: true; type: number; flags: number; data: Buffer }
  | { control: false; streamId: number; flags: number; data: Buffer };

/** Streaming SPDY/3 frame reader (8-byte header, 24-bit length); joins bytes once per frame. */
export class SpdyFrameReader {
  private chunks: Buffer[] = [];
  private size = 0;
  /** Bytes the frame at the front needs in all (known once its header is in). */
  private need = 8;

  constructor(private readonly maxFrame = 16 << 20) {}

  push(chunk: Buffer): SpdyFrame[] {
    this.chunks.push(chunk);
    this.size += chunk.length;
    const out: SpdyFrame[] = [];
    while (this.size >= this.need) {
      const buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
      this.chunks = [buf];
      const len = buf.readUIntBE(5, 3);
      if (len > this.maxFrame) throw new Error(`SPDY frame of ${len} bytes is too big`);
      this.need = 8 + len;
      if (this.size < this.need) break;
      const flags = buf[4]!;
      const data = buf.subarray(8, 8 + len);
      if (buf[0]! & 0x80) {
        const version = buf.readUInt16BE(0) & 0x7fff;
        if (version !== VERSION) throw new Error(`SPDY version ${version}, not 3`);
        out.push({ control: true, type: buf.readUInt16BE(2), flags, data });
      } else {
        out.push({ control: false, streamId: buf.readUInt32BE(0) & 0x7fffffff, flags, data });
      }
      const rest = buf.subarray(8 + len);
      this.chunks = rest.length ? [rest] : [];
      this.size = rest.length;
      this.need = 8;
    }
    return out;
  }
}

export function controlFrame(type: number, flags: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt16BE(0x8000 | VERSION, 0);
  head.writeUInt16BE(type, 2);
  head.writeUInt32BE(payload.length, 4);
  head[4] = flags;
  return Buffer.concat([head, payload]);
}

export function dataFrame(streamId: number, flags: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(streamId & 0x7fffffff, 0);
  head.writeUInt32BE(payload.length, 4);
  head[4] = flags;
  return Buffer.concat([head, payload]);
}

/** Uncompressed SPDY/3 header block: count, then (name, value) with 32-bit lengths. */
export function encodeHeaderBlock(h: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n, 0);
    return b;
  };
  const entries = Object.entries(h);
  parts.push(u32(entries.length));
  for (const [k, v] of entries) {
    const kb = Buffer.from(k.toLowerCase());
    const vb = Buffer.from(v);
    parts.push(u32(kb.length), kb, u32(vb.length), vb);
  }
  return Buffer.concat(parts);
}

export function decodeHeaderBlock(b: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 4;
  const n = b.readUInt32BE(0);
  for (let i = 0; i < n; i++) {
    const kl = b.readUInt32BE(off);
    const k = b.subarray(off + 4, off + 4 + kl).toString();
    off += 4 + kl;
    const vl = b.readUInt32BE(off);
    out[k] = b.subarray(off + 4, off + 4 + vl).toString(); // NUL-separated multi-values kept as is
    off += 4 + vl;
  }
  return out;
}

/** One zlib context per direction, flushed (Z_SYNC_FLUSH) after every header block. */
export class HeaderCodec {
  private readonly inflate = zlib.createInflate({ dictionary: SPDY_DICTIONARY });
  private readonly deflate = zlib.createDeflate({ dictionary: SPDY_DICTIONARY });

  decode(block: Buffer): Promise<Record<string, string>> {
    return step(this.inflate, block).then(decodeHeaderBlock);
  }

  encode(h: Record<string, string>): Promise<Buffer> {
    return step(this.deflate, encodeHeaderBlock(h));
  }

  close(): void {
    this.inflate.close();
    this.deflate.close();
  }
}

function step(z: zlib.Inflate | zlib.Deflate, input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const onData = (c: Buffer) => out.push(c);
    z.on('data', onData);
    z.once('error', reject);
    z.write(input);
    z.flush(zlib.constants.Z_SYNC_FLUSH, () => {
      z.off('data', onData);
      z.off('error', reject);
      resolve(Buffer.concat(out));
    });
  });
}

/** remotecommand protocols the kubelet serves over SPDY; kubectl 1.32 offers v5, v4, v3, v2, v1. */
export const SPDY_PROTOCOLS = ['v4.channel.k8s.io'];

const STREAM_CHANNEL: Record<string, number> = { stdin: CH.stdin, stdout: CH.stdout, stderr: CH.stderr, error: CH.error, resize: CH.resize };

export function isSpdyUpgrade(req: IncomingMessage): boolean {
  return (req.headers.upgrade ?? '').toLowerCase() === 'spdy/3.1';
}

/**
 * Serve one exec over SPDY/3.1 (call after the checks the API server and kubelet make
 * before upgrading). Returns false if no protocol version is in common (the caller answers 403).
 */
export function serveExecSpdy(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  exec: ExecRequest,
  opts: ExecOptions & { onProcess: (p: ExecProcess) => void },
): boolean {
  const offered = String(req.headers['x-stream-protocol-version'] ?? '').split(',').map((s) => s.trim());
  const protocol = offered.find((p) => SPDY_PROTOCOLS.includes(p));
  if (!protocol) return false;
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${protocol}\r\n\r\n`);

  const rec = newRecord(exec, 'spdy', protocol);
  const reader = new SpdyFrameReader();
  const codec = new HeaderCodec();
  const streams = new Map<number, number>(); // stream id → channel
  const idOf = (ch: number) => [...streams].find(([, c]) => c === ch)?.[0];
  const wanted = [CH.error, ...(exec.stdin ? [CH.stdin] : []), ...(exec.stdout ? [CH.stdout] : []), ...(exec.stderr && !exec.tty ? [CH.stderr] : []), ...(exec.tty ? [CH.resize] : [])];
  let lastStream = 0;
  let proc: ExecProcess | undefined;
  let gone = false;
  let queue = Promise.resolve();

  const write = (b: Buffer) => (gone ? true : socket.write(b));
  const sink: ExecSink = {
    write: (ch, data) => {
      const id = idOf(ch);
      return id === undefined ? true : write(dataFrame(id, 0, data));
    },
    finish: (status: Obj) => {
      const err = idOf(CH.error);
      if (err !== undefined) write(dataFrame(err, 0, Buffer.from(JSON.stringify(status))));
      for (const [id] of streams) write(dataFrame(id, FLAG_FIN, Buffer.alloc(0)));
      const goAway = Buffer.alloc(8);
      goAway.writeUInt32BE(lastStream, 0); // last good stream; status 0 = OK
      write(controlFrame(FRAME.goAway, 0, goAway));
      setTimeout(() => socket.end(), 50).unref();
      setTimeout(() => socket.destroy(), 2000).unref();
      return status;
    },
  };

  const start = () => {
    if (proc || !wanted.every((ch) => idOf(ch) !== undefined)) return;
    proc = new ExecProcess(rec, sink, opts, nodeArgv(exec.command).nsenter);
    opts.onProcess(proc);
    proc.start();
  };

  async function handle(f: SpdyFrame): Promise<void> {
    if (!f.control) {
      const ch = streams.get(f.streamId);
      if (ch === CH.stdin && proc) {
        if (f.data.length && !proc.writeStdin(f.data)) {
          socket.pause();
          proc.onStdinDrain(() => socket.resume());
        }
        if (f.flags & FLAG_FIN) proc.endStdin();
      }
      return; // resize (no tty here) and anything else: dropped
    }
    if (f.type === FRAME.synStream) {
      const id = f.data.readUInt32BE(0) & 0x7fffffff;
      const headers = await codec.decode(f.data.subarray(10));
      lastStream = Math.max(lastStream, id);
      const ch = STREAM_CHANNEL[headers.streamtype ?? ''];
      const reply = Buffer.alloc(4);
      reply.writeUInt32BE(id, 0);
      write(controlFrame(FRAME.synReply, 0, Buffer.concat([reply, await codec.encode({})])));
      if (ch !== undefined) streams.set(id, ch);
      start();
    } else if (f.type === FRAME.ping) {
      write(controlFrame(FRAME.ping, 0, f.data)); // echo: the client's ids are odd
      rec.pings++;
    } else if (f.type === FRAME.rstStream) {
      if (streams.get(f.data.readUInt32BE(0) & 0x7fffffff) === CH.stdin) proc?.endStdin();
    } else if (f.type === FRAME.goAway) {
      clientGone();
    }
    // SETTINGS, WINDOW_UPDATE, HEADERS: nothing to do (no flow control, as spdystream)
  }

  function clientGone(): void {
    if (gone) return;
    gone = true;
    proc?.clientGone();
    codec.close();
  }

  socket.on('data', (chunk: Buffer) => {
    let frames: SpdyFrame[];
    try {
      frames = reader.push(chunk);
    } catch {
      socket.destroy();
      return;
    }
    for (const f of frames) queue = queue.then(() => handle(f)).catch(() => void socket.destroy());
  });
  socket.on('drain', () => proc?.resumeOutput());
  socket.on('end', () => {
    // the client's side is closed (upgraded sockets are half-open capable): it is gone
    clientGone();
    socket.end();
  });
  socket.on('close', clientGone);
  socket.on('error', clientGone);
  if (head.length) socket.emit('data', head);
  return true;
}
