/**
 * The ceiling for the deploy gate: node:https reading a POSTed AdmissionReview in full and
 * answering it with fixed bytes (the gate's own answer to the same review, captured by the
 * bench), with the headers the gate sends. No parsing, no policy, no trust data. Started by
 * `npm run bench:gate` as its own process:
 *   node dist/bench/gate-bare-server.js CONFIG.json   ({cert, key, responses: {path: base64}})
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';

interface Config {
  cert: string;
  key: string;
  responses: Record<string, string>;
}

const config = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Config;
const responses = new Map(Object.entries(config.responses).map(([p, b64]) => [p, Buffer.from(b64, 'base64')]));
const notFound = Buffer.from('{"error":"no route"}');

const handler: http.RequestListener = (req, res) => {
  const body = req.method === 'POST' ? responses.get(req.url ?? '') : undefined;
  // Read the whole review as the gate does before answering.
  req.on('data', () => {});
  req.on('end', () => {
    const out = body ?? notFound;
    res.writeHead(body ? 200 : 404, { 'content-type': 'application/json', 'content-length': out.length, 'cache-control': 'no-store' });
    res.end(out);
  });
};

// Same options as the gate's server (gate-server.ts): only the certificate and key.
const server = https.createServer({ cert: readFileSync(config.cert), key: readFileSync(config.key) }, handler);
server.keepAliveTimeout = 65_000; // as the gate
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  console.log(`gate-bare listening on https://127.0.0.1:${port}`);
});
const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
