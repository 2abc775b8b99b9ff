// A client of the CRI streaming server's port-forward (the URL CRI's PortForward answers), over
// WebSocket, which Kubernetes' streaming server offers beside SPDY (binary channel protocol
// "v4.channel.k8s.io"): what kubectl's client side does, without kubectl. Every message is one
// channel byte and data; port i uses channel 2i for its bytes and 2i+1 for errors, and the server
// first sends each channel its port (2 bytes, little endian). One request is written on the data channel; everything that comes back on it until the
// server closes is the answer.
import { randomBytes } from 'node:crypto';
import net from 'node:net';

/** Sends `request` to `port` of the pod through the streaming URL; resolves with the bytes that came back. */
export function portForward(url: string, port: number, request: Buffer): Promise<{ data: Buffer; error: string }> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(target.port), target.hostname);
    let buffered = Buffer.alloc(0);
    let upgraded = false;
    const data: Buffer[] = [];
    const errors: Buffer[] = [];
    const seenPortHeader = new Set<number>();
    const finish = (): void => resolve({ data: Buffer.concat(data), error: Buffer.concat(errors).toString() });
    socket.on('error', reject);
    // Not a measurement: a server that never answers must not hang the test run.
    socket.setTimeout(60_000, () => socket.destroy(new Error('port-forward: no answer in 60 s')));
    socket.on('close', finish);
    socket.on('connect', () => {
      socket.write(
        [
          `GET ${target.pathname}?port=${port} HTTP/1.1`, `Host: ${target.host}`, 'Upgrade: websocket', 'Connection: Upgrade',
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`, 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Protocol: v4.channel.k8s.io', '', '',
        ].join('\r\n'),
      );
    });
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (!upgraded) {
        const end = buffered.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buffered.subarray(0, end).toString();
        if (!/^HTTP\/1\.1 101 /.test(head)) return reject(new Error(`port-forward upgrade refused: ${head.split('\r\n')[0]}`));
        upgraded = true;
        buffered = buffered.subarray(end + 4);
        socket.write(frame(Buffer.concat([Buffer.from([0]), request])));
      }
      for (let f = parseFrame(buffered); f !== undefined; f = parseFrame(buffered)) {
        buffered = buffered.subarray(f.length);
        if (f.opcode === 8) return void socket.end();
        if (f.opcode !== 2 || f.payload.length === 0) continue;
        const channel = f.payload[0] as number;
        let body = f.payload.subarray(1);
        // The first two bytes on each channel are the port number.
        if (!seenPortHeader.has(channel)) {
          seenPortHeader.add(channel);
          body = body.subarray(2);
        }
        (channel === 0 ? data : errors).push(body);
      }
    });
  });
}

/** A masked binary frame (a client's frames must be masked). */
function frame(payload: Buffer): Buffer {
  const mask = randomBytes(4);
  const length = payload.length < 126 ? Buffer.from([0x80 | payload.length]) : Buffer.from([0x80 | 126, payload.length >> 8, payload.length & 0xff]);
  const masked = Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] as number)));
  return Buffer.concat([Buffer.from([0x82]), length, mask, masked]);
}

function parseFrame(buf: Buffer): { opcode: number; payload: Buffer; length: number } | undefined {
  if (buf.length < 2) return undefined;
  const opcode = (buf[0] as number) & 0x0f;
  let length = (buf[1] as number) & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (buf.length < 4) return undefined;
    length = buf.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (buf.length < 10) return undefined;
    length = Number(buf.readBigUInt64BE(2));
    offset = 10;
  }
  if (buf.length < offset + length) return undefined;
  return { opcode, payload: buf.subarray(offset, offset + length), length: offset + length };
}
