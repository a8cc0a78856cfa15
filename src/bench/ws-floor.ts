/**
 * The transport's own floor for the private benchmark: a raw WebSocket round trip (the same `ws`
 * library, options and loopback as the private endpoint, a second process) that sends `up` bytes
 * and gets `down` bytes back, with no framing, parsing or HE on either side. A private row's
 * network time minus rounds x this floor is what our framing and scheduling add.
 */
import { spawn } from 'node:child_process';
import { WebSocket } from 'ws';

// The echo side: replies to each binary message with a buffer of the size the message names
// (its first 4 bytes, little-endian), so one server answers every size.
const ECHO_SERVER = `
const { WebSocketServer } = require(${JSON.stringify(require.resolve('ws'))});
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 1 << 30 });
wss.on('listening', () => process.stdout.write(JSON.stringify({ port: wss.address().port }) + '\\n'));
wss.on('connection', (ws) => ws.on('message', (d) => ws.send(Buffer.alloc(d.readUInt32LE(0), 1))));
`;

export interface WsFloor {
  /** Median wall milliseconds of one round trip of `up` bytes out and `down` bytes back. */
  roundTripMs(up: number, down: number, iterations?: number): Promise<number>;
  close(): Promise<void>;
}

/** Starts the echo process and connects to it. */
export async function openWsFloor(): Promise<WsFloor> {
  const child = spawn(process.execPath, ['-e', ECHO_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const line = buf.split('\n').find((l) => l.startsWith('{"port"'));
      if (line) resolve(JSON.parse(line).port);
    });
    child.once('exit', (code) => reject(new Error(`ws floor: the echo process exited with code ${code}`)));
  });
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false, maxPayload: 1 << 30 });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const once = (up: number, down: number): Promise<number> =>
    new Promise((resolve, reject) => {
      const frame = Buffer.alloc(Math.max(4, up), 2);
      frame.writeUInt32LE(down, 0);
      const t0 = performance.now();
      ws.once('message', (data: Buffer) => {
        const ms = performance.now() - t0;
        if (data.byteLength !== down) reject(new Error(`ws floor: asked for ${down} bytes back, got ${data.byteLength}`));
        else resolve(ms);
      });
      ws.send(frame, (err) => err && reject(err));
    });
  return {
    async roundTripMs(up, down, iterations = 50) {
      for (let i = 0; i < 5; i++) await once(up, down); // warm-up: connection buffers, JIT
      const t: number[] = [];
      for (let i = 0; i < iterations; i++) t.push(await once(up, down));
      t.sort((a, b) => a - b);
      return t[Math.floor(t.length / 2)];
    },
    close() {
      return new Promise((resolve) => {
        ws.once('close', () => resolve());
        ws.close();
        child.kill('SIGTERM');
      });
    },
  };
}
