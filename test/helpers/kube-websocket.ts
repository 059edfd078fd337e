// RFC 6455 WebSocket, server side, by hand (no npm websocket package): the opening handshake
// on node:http's 'upgrade' event, a streaming frame reader (masking, fragmentation, control
// frames between fragments), and a connection that answers pings and does the closing
// handshake. Used by the Kubernetes API double for the exec stream kubectl 1.32 opens
// (gorilla/websocket client, subprotocol v5.channel.k8s.io).
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export const OP = { cont: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

/** Close codes used here (RFC 6455 §7.4.1). */
export const CLOSE = { normal: 1000, goingAway: 1001, protocolError: 1002, tooBig: 1009 } as const;

export interface Frame {
  fin: boolean;
  opcode: number;
  /** Unmasked payload. */
  payload: Buffer;
  masked: boolean;
}

export function acceptKey(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/** Subprotocols the client offered, in its order of preference. */
export function offeredProtocols(req: IncomingMessage): string[] {
  const raw = req.headers['sec-websocket-protocol'];
  const list = Array.isArray(raw) ? raw.join(',') : (raw ?? '');
  return list.split(',').map((s) => s.trim()).filter(Boolean);
}

export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  return (req.headers.upgrade ?? '').toLowerCase() === 'websocket' && /\bupgrade\b/i.test(req.headers.connection ?? '');
}

/** The header of a server frame with `len` payload bytes (servers never mask, §5.1). */
export function frameHeader(opcode: number, len: number, fin = true): Buffer {
  const head = len < 126 ? 2 : len < 0x10000 ? 4 : 10;
  const out = Buffer.allocUnsafe(head);
  out[0] = (fin ? 0x80 : 0) | opcode;
  if (len < 126) out[1] = len;
  else if (len < 0x10000) {
    out[1] = 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 127;
    out.writeBigUInt64BE(BigInt(len), 2);
  }
  return out;
}

/** Encode one server frame. */
export function encodeFrame(opcode: number, payload: Buffer = Buffer.alloc(0), fin = true): Buffer {
  return Buffer.concat([frameHeader(opcode, payload.length, fin), payload]);
}

/** Encode a client frame (masked), for tests of the reader. */
export function encodeMaskedFrame(opcode: number, payload: Buffer, fin = true, mask = Buffer.from([0x37, 0xfa, 0x21, 0x3d])): Buffer {
  const plain = encodeFrame(opcode, payload, fin);
  const head = plain.length - payload.length;
  const out = Buffer.allocUnsafe(plain.length + 4);
  plain.copy(out, 0, 0, head);
  out[1] = out[1]! | 0x80;
  mask.copy(out, head);
  for (let i = 0; i < payload.length; i++) out[head + 4 + i] = payload[i]! ^ mask[i & 3]!;
  return out;
}

export class ProtocolError extends Error {
  constructor(
    message: string,
    readonly code: number = CLOSE.protocolError,
  ) {
    super(message);
  }
}

/**
 * Streaming frame reader: push() bytes as they arrive, get whole frames back. Holds at most
 * one frame's bytes (bounded by maxFrame). Frames from a client must be masked.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(
    private readonly maxFrame = 16 << 20,
    private readonly requireMask = true,
  ) {}

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.size += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      const f = this.next();
      if (!f) return frames;
      frames.push(f);
    }
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!;
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.size -= n;
    return out;
  }

  private next(): Frame | undefined {
    if (this.size < 2) return undefined;
    const h = this.peek(2);
    const b0 = h[0]!;
    const b1 = h[1]!;
    if (b0 & 0x70) throw new ProtocolError('reserved bits set (no extension was negotiated)');
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    const masked = (b1 & 0x80) !== 0;
    if (this.requireMask && !masked) throw new ProtocolError('client frame is not masked');
    if (![0, 1, 2, 8, 9, 10].includes(opcode)) throw new ProtocolError(`unknown opcode ${opcode}`);
    let len = b1 & 0x7f;
    let off = 2;
    if (len === 126) {
      if (this.size < 4) return undefined;
      len = this.peek(4).readUInt16BE(2);
      off = 4;
    } else if (len === 127) {
      if (this.size < 10) return undefined;
      const big = this.peek(10).readBigUInt64BE(2);
      if (big > BigInt(this.maxFrame)) throw new ProtocolError(`frame of ${big} bytes is too big`, CLOSE.tooBig);
      len = Number(big);
      off = 10;
    }
    if (opcode >= 8 && (len > 125 || !fin)) throw new ProtocolError('control frame fragmented or longer than 125 bytes');
    if (len > this.maxFrame) throw new ProtocolError(`frame of ${len} bytes is too big`, CLOSE.tooBig);
    const total = off + (masked ? 4 : 0) + len;
    if (this.size < total) return undefined;
    const raw = this.take(total);
    const payload = Buffer.from(raw.subarray(total - len));
    if (masked) {
      const mask = raw.subarray(off, off + 4);
      for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ mask[i & 3]!;
    }
    return { fin, opcode, payload, masked };
  }
}

/**
 * Reassembles messages from frames (§5.4): a data frame without FIN starts a message that
 * continuation frames extend; control frames may come in between and are returned at once.
 */
export class MessageAssembler {
  private parts: Buffer[] | undefined;
  private opcode = 0;
  private size = 0;

  constructor(private readonly maxMessage = 64 << 20) {}

  /** A complete message (data or control), or undefined while a fragmented one is open. */
  add(f: Frame): { opcode: number; data: Buffer } | undefined {
    if (f.opcode >= 8) return { opcode: f.opcode, data: f.payload };
    if (f.opcode === OP.cont) {
      if (!this.parts) throw new ProtocolError('continuation frame without a message to continue');
    } else {
      if (this.parts) throw new ProtocolError('new data frame while a fragmented message is open');
      this.parts = [];
      this.opcode = f.opcode;
      this.size = 0;
    }
    this.parts.push(f.payload);
    this.size += f.payload.length;
    if (this.size > this.maxMessage) throw new ProtocolError('message too big', CLOSE.tooBig);
    if (!f.fin) return undefined;
    const data = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    this.parts = undefined;
    return { opcode: this.opcode, data };
  }
}

export interface WsHandlers {
  /** A whole binary or text message (fragments joined). */
  onMessage(opcode: number, data: Buffer): void;
  /** A ping arrived (already answered with a pong). */
  onPing?(data: Buffer): void;
  /** The connection is gone: closing handshake done, TCP dropped, or protocol error. */
  onGone(reason: { code?: number; text?: string; error?: Error; clean: boolean }): void;
}

/** One accepted WebSocket connection (server side). */
export class WsConnection {
  private readonly reader = new FrameReader();
  private readonly assembler = new MessageAssembler();
  private closeSent = false;
  private gone = false;
  private closeTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly socket: Duplex,
    readonly protocol: string,
    private readonly handlers: WsHandlers,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => this.finish({ error, clean: false }));
    socket.on('close', () => this.finish({ clean: this.closeSent, text: 'connection closed' }));
    socket.on('end', () => socket.end());
  }

  /**
   * Accept the upgrade: 101 with Sec-WebSocket-Accept and the chosen subprotocol. `head` is
   * what node read past the request headers (the first frames, if the client was quick).
   */
  static accept(req: IncomingMessage, socket: Duplex, head: Buffer, protocol: string, handlers: WsHandlers): WsConnection {
    const key = String(req.headers['sec-websocket-key'] ?? '');
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\n' +
        'Upgrade: websocket\r\n' +
        'Connection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n` +
        (protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : '') +
        '\r\n',
    );
    const conn = new WsConnection(socket, protocol, handlers);
    if (head.length) queueMicrotask(() => conn.onData(head));
    return conn;
  }

  get open(): boolean {
    return !this.gone && !this.closeSent;
  }

  /**
   * Send one binary message made of `parts` (no copy of the payload); false when the
   * socket's buffer is full (wait for 'drain').
   */
  send(...parts: Buffer[]): boolean {
    if (!this.open) return true;
    const len = parts.reduce((n, p) => n + p.length, 0);
    this.socket.cork();
    let ok = this.socket.write(frameHeader(OP.binary, len));
    for (const p of parts) ok = this.socket.write(p);
    this.socket.uncork();
    return ok;
  }

  /** Start the closing handshake; the socket ends when the client answers (or after 2 s). */
  close(code: number = CLOSE.normal, text = ''): void {
    if (this.gone || this.closeSent) return;
    this.closeSent = true;
    const body = Buffer.alloc(2 + Buffer.byteLength(text));
    body.writeUInt16BE(code, 0);
    body.write(text, 2);
    this.socket.write(encodeFrame(OP.close, body));
    this.closeTimer = setTimeout(() => this.socket.destroy(), 2000);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  private onData(chunk: Buffer): void {
    if (this.gone) return;
    try {
      for (const f of this.reader.push(chunk)) {
        const msg = this.assembler.add(f);
        if (!msg) continue;
        if (msg.opcode === OP.ping) {
          if (!this.closeSent) this.socket.write(encodeFrame(OP.pong, msg.data));
          this.handlers.onPing?.(msg.data);
        } else if (msg.opcode === OP.pong) {
          // unsolicited pongs are allowed (§5.5.3); nothing to do
        } else if (msg.opcode === OP.close) {
          const code = msg.data.length >= 2 ? msg.data.readUInt16BE(0) : undefined;
          const text = msg.data.subarray(2).toString('utf8');
          if (!this.closeSent) {
            this.closeSent = true;
            this.socket.write(encodeFrame(OP.close, msg.data.subarray(0, 2)));
          }
          this.socket.end();
          this.finish({ code, text, clean: true });
          return;
        } else {
          this.handlers.onMessage(msg.opcode, msg.data);
        }
      }
    } catch (e) {
      const err = e as ProtocolError;
      this.close(err.code ?? CLOSE.protocolError, err.message.slice(0, 120));
      this.finish({ error: err, clean: false });
    }
  }

  private finish(reason: { code?: number; text?: string; error?: Error; clean: boolean }): void {
    if (this.gone) return;
    this.gone = true;
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.handlers.onGone(reason);
  }
}
