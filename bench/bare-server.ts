/**
 * The ceiling for Node: node:http(s) answering GETs of fixed paths with fixed bytes held in
 * memory, no framework, no database. Started by the bench as its own process:
 *   node dist/bench/bare-server.js CONFIG.json   ({cert?, key?, files: {path: base64}})
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

interface BareConfig {
  cert?: string;
  key?: string;
  files: Record<string, string>;
}

const config = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as BareConfig;
const files = new Map(Object.entries(config.files).map(([p, b64]) => [p, Buffer.from(b64, 'base64')]));
const notFound = Buffer.from('{"errors":[{"code":"METADATA_NOT_FOUND","message":"metadata not found"}]}');

const handler: http.RequestListener = (req, res) => {
  const body = req.method === 'GET' ? files.get(req.url ?? '') : undefined;
  res.writeHead(body ? 200 : 404, { 'Content-Type': 'application/json', 'Content-Length': (body ?? notFound).length });
  res.end(body ?? notFound);
};

const server =
  config.cert && config.key
    ? https.createServer({ cert: readFileSync(config.cert), key: readFileSync(config.key), minVersion: 'TLSv1.2' }, handler)
    : http.createServer(handler);
server.keepAliveTimeout = 5_000; // as Signet
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  console.log(`bare listening on ${config.cert ? 'https' : 'http'}://127.0.0.1:${port}`);
});
const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
