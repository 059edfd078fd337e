// A minimal CRI client (runtime.v1 RuntimeService over gRPC on containerd's socket), to drive
// containerd's real CRI plugin as kubelet does: a pod sandbox, containers with kubelet's
// mounts, ContainerStatus. crictl is not in Debian and no npm package may be added, so this
// speaks gRPC itself: node's http2, hand-encoded protobuf for the few messages it needs
// (field numbers from k8s.io/cri-api runtime/v1 api.proto). Every call has a deadline.
//
//   const cri = criClient(ctd.address);
//   const pod = await cri.runPodSandbox({ name: 'web', uid: 'u1', namespace: 'default', logDir });
//   const id = await cri.createContainer(pod, { name: 'app', image, command: ['/bin/sleep', '100000'], mounts });
//   await cri.startContainer(id);
//   const { state, info } = await cri.containerStatus(id);   // info: the verbose "info" JSON
import http2 from 'node:http2';
import net from 'node:net';

// --- protobuf: just enough ----------------------------------------------------------------
const varint = (n: number): Buffer => {
  const b: number[] = [];
  while (n > 127) {
    b.push((n & 127) | 128);
    n = Math.floor(n / 128);
  }
  b.push(n);
  return Buffer.from(b);
};
const tag = (field: number, wire: number) => varint((field << 3) | wire);
const bytes = (field: number, v: string | Buffer) => {
  const b = Buffer.isBuffer(v) ? v : Buffer.from(v);
  return Buffer.concat([tag(field, 2), varint(b.length), b]);
};
const message = (field: number, ...parts: Buffer[]) => bytes(field, Buffer.concat(parts));
const uint = (field: number, n: number) => Buffer.concat([tag(field, 0), varint(n)]);

type Field = { field: number; value: Buffer | number };
function decode(buf: Buffer): Field[] {
  const out: Field[] = [];
  let i = 0;
  const read = () => {
    let r = 0;
    let m = 1;
    let b: number;
    do {
      b = buf[i++]!;
      r += (b & 127) * m;
      m *= 128;
    } while (b & 128);
    return r;
  };
  while (i < buf.length) {
    const k = read();
    const wire = k & 7;
    if (wire === 0) out.push({ field: k >> 3, value: read() });
    else if (wire === 2) {
      const len = read();
      out.push({ field: k >> 3, value: buf.subarray(i, i + len) });
      i += len;
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else throw new Error(`cri: protobuf wire type ${wire}`);
  }
  return out;
}
const str = (fields: Field[], n: number) => {
  const f = fields.find((x) => x.field === n)?.value;
  return Buffer.isBuffer(f) ? f.toString('utf8') : '';
};

export interface PodSpec {
  name: string;
  uid: string;
  namespace: string;
  logDir: string;
}

export interface CriMount {
  containerPath: string;
  hostPath: string;
  readonly?: boolean;
}

export interface ContainerSpec {
  name: string;
  image: string;
  command: string[];
  mounts?: CriMount[];
}

export const CONTAINER_STATES = ['CONTAINER_CREATED', 'CONTAINER_RUNNING', 'CONTAINER_EXITED', 'CONTAINER_UNKNOWN'];

export interface CriClient {
  runPodSandbox(pod: PodSpec): Promise<string>;
  createContainer(podId: string, c: ContainerSpec): Promise<string>;
  startContainer(id: string): Promise<void>;
  stopContainer(id: string, timeoutSeconds?: number): Promise<void>;
  /** ContainerStatus with verbose: the state's name, and the parsed "info" JSON. */
  containerStatus(id: string): Promise<{ id: string; state: string; info: Record<string, unknown> }>;
  stopPodSandbox(podId: string): Promise<void>;
  removePodSandbox(podId: string): Promise<void>;
}

export function criClient(socket: string, deadlineMs = 60_000): CriClient {
  const call = (method: string, body: Buffer): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const client = http2.connect('http://localhost', { createConnection: () => net.connect(socket) });
      const timer = setTimeout(() => {
        client.destroy();
        reject(new Error(`cri ${method}: no answer within ${deadlineMs} ms`));
      }, deadlineMs);
      client.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      const req = client.request({
        ':method': 'POST',
        ':path': `/runtime.v1.RuntimeService/${method}`,
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      const chunks: Buffer[] = [];
      let status = '';
      let why = '';
      const take = (h: http2.IncomingHttpHeaders) => {
        if (h['grpc-status'] !== undefined) {
          status = String(h['grpc-status']);
          why = decodeURIComponent(String(h['grpc-message'] ?? ''));
        }
      };
      req.on('response', take);
      req.on('trailers', take);
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        clearTimeout(timer);
        client.close();
        if (status !== '0') return reject(new Error(`cri ${method}: ${why || `grpc-status ${status}`}`));
        const all = Buffer.concat(chunks);
        resolve(all.length >= 5 ? all.subarray(5, 5 + all.readUInt32BE(1)) : Buffer.alloc(0));
      });
      const frame = Buffer.alloc(5);
      frame.writeUInt32BE(body.length, 1);
      req.end(Buffer.concat([frame, body]));
    });

  // PodSandboxConfig: metadata{name uid namespace attempt}=1, hostname=2, log_directory=3
  const sandboxConfig = (p: PodSpec) =>
    Buffer.concat([message(1, bytes(1, p.name), bytes(2, p.uid), bytes(3, p.namespace), uint(4, 0)), bytes(2, p.name), bytes(3, p.logDir)]);
  const pods = new Map<string, PodSpec>();

  return {
    async runPodSandbox(pod) {
      const id = str(decode(await call('RunPodSandbox', message(1, sandboxConfig(pod)))), 1);
      pods.set(id, pod);
      return id;
    },
    async createContainer(podId, c) {
      const pod = pods.get(podId);
      if (!pod) throw new Error(`cri: unknown pod ${podId}`);
      // ContainerConfig: metadata=1, image=2, command=3, mounts=7, log_path=11
      const config = Buffer.concat([
        message(1, bytes(1, c.name), uint(2, 0)),
        message(2, bytes(1, c.image)),
        ...c.command.map((a) => bytes(3, a)),
        ...(c.mounts ?? []).map((m) => message(7, bytes(1, m.containerPath), bytes(2, m.hostPath), uint(3, m.readonly ? 1 : 0))),
        bytes(11, `${c.name}.log`),
      ]);
      return str(decode(await call('CreateContainer', Buffer.concat([bytes(1, podId), message(2, config), message(3, sandboxConfig(pod))]))), 1);
    },
    async startContainer(id) {
      await call('StartContainer', bytes(1, id));
    },
    async stopContainer(id, timeoutSeconds = 0) {
      await call('StopContainer', Buffer.concat([bytes(1, id), uint(2, timeoutSeconds)]));
    },
    async containerStatus(id) {
      const res = decode(await call('ContainerStatus', Buffer.concat([bytes(1, id), uint(2, 1)])));
      const status = decode(res.find((f) => f.field === 1)!.value as Buffer);
      const state = Number(status.find((f) => f.field === 3)?.value ?? 0);
      let info: Record<string, unknown> = {};
      for (const e of res.filter((f) => f.field === 2)) {
        const kv = decode(e.value as Buffer);
        if (str(kv, 1) === 'info') info = JSON.parse(str(kv, 2));
      }
      return { id: str(status, 1), state: CONTAINER_STATES[state] ?? String(state), info };
    },
    async stopPodSandbox(podId) {
      await call('StopPodSandbox', bytes(1, podId));
    },
    async removePodSandbox(podId) {
      await call('RemovePodSandbox', bytes(1, podId));
      pods.delete(podId);
    },
  };
}
