import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A static Notary v1 server for any number of repositories, serving what the test gives it. */
export class StaticNotaryServer {
  states = new Map<string, { files: Map<string, Buffer>; roots: Map<number, Buffer> }>();
  url = '';
  private readonly server = http.createServer((req, res) => {
    const m = /^\/v2\/(.+)\/_trust\/tuf\/(.+)$/.exec(decodeURIComponent(req.url ?? ''));
    const repo = m ? this.states.get(m[1]!) : undefined;
    if (req.url === '/v2/') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    if (!m || !repo) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"METADATA_NOT_FOUND"}]}');
    const name = m[2]!;
    const version = /^(\d+)\.root\.json$/.exec(name);
    const hashed = /^(.+)\.[0-9a-f]{64}\.json$/.exec(name);
    const body = version ? repo.roots.get(Number(version[1])) : repo.files.get((hashed ? hashed[1]! : name).replace(/\.json$/, ''));
    if (!body) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"METADATA_NOT_FOUND"}]}');
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  async start() {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  serve(gun: string, files: Record<string, Buffer>) {
    this.states.set(gun, { files: new Map(Object.entries(files)), roots: new Map([[1, files['root']!]]) });
  }
  stop() {
    this.server.closeAllConnections();
    return new Promise<void>((r) => this.server.close(() => r()));
  }
}
