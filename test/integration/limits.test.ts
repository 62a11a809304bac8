/** Resource limits against slow and greedy clients: header and request timeouts, connection cap. */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import request from 'supertest';
import { startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
before(async () => {
  server = await startTestServer({ SIGNET_HEADERS_TIMEOUT_MS: '1000', SIGNET_REQUEST_TIMEOUT_MS: '2000', SIGNET_MAX_CONNECTIONS: '5' });
});
after(async () => {
  await server?.close();
});

function connect(): Promise<net.Socket> {
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(port), '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

/** Milliseconds until the server closes the socket (or answers), capped. */
function closedWithin(socket: net.Socket, capMs: number): Promise<{ ms: number; data: string }> {
  const started = Date.now();
  let data = '';
  return new Promise((resolve) => {
    const done = () => resolve({ ms: Date.now() - started, data });
    socket.on('data', (d) => (data += d.toString()));
    socket.on('close', done);
    socket.on('error', () => {});
    setTimeout(() => {
      socket.destroy();
      resolve({ ms: capMs, data });
    }, capMs);
  });
}

test('a client that never finishes its headers is cut off after the header timeout', async () => {
  const socket = await connect();
  socket.write('GET /v2/ HTTP/1.1\r\nHost: signet\r\n'); // and nothing more
  const { ms, data } = await closedWithin(socket, 8000);
  assert.ok(ms < 4000, `connection held ${ms} ms`);
  assert.match(data, /^HTTP\/1\.1 408|^$/);
});

test('a client that trickles its body is cut off after the request timeout', async () => {
  const socket = await connect();
  socket.write('POST /v2/slow/app/_trust/tuf/ HTTP/1.1\r\nHost: signet\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 100000\r\n\r\n');
  const timer = setInterval(() => socket.writable && socket.write('a'), 200);
  const { ms } = await closedWithin(socket, 10_000);
  clearInterval(timer);
  assert.ok(ms < 6000, `slow upload held the connection ${ms} ms`);
});

test('connections beyond the cap are refused; the server serves again once they close', async () => {
  const held = await Promise.all(Array.from({ length: 5 }, () => connect()));
  const extra = await connect().catch(() => null);
  if (extra) {
    const { ms } = await closedWithin(extra, 3000);
    assert.ok(ms < 3000, 'a connection above the cap was kept open');
  }
  for (const s of held) s.destroy();
  await new Promise((r) => setTimeout(r, 200));
  assert.equal((await request(server.url).get('/v2/')).status, 200);
});
