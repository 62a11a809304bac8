/**
 * A stand-in Docker engine on a unix socket (no engine runs on these machines): what the docker
 * CLI asks of one for `docker trust sign` (ping, image inspect, push of a manifest that is
 * already in the registry) and for a pull with content trust (`DOCKER_CONTENT_TRUST=1 docker
 * pull`: a pull by the digest the CLI verified, then a tag). It pulls nothing: it checks that
 * the registry holds the manifest by that digest and records each pull, so a test can assert
 * which digest the CLI trusted.
 */
import http from 'node:http';
import { rmSync } from 'node:fs';

const ACCEPT = 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json';

export interface StandInEngine {
  socket: string;
  /** `name@digest` of every pull the CLI asked for. */
  pulls: string[];
  close(): Promise<void>;
}

/** `127.0.0.1:5000/demo/app:v1` → { repo: 'demo/app', ref: 'v1' }. */
function split(name: string, tag: string | null): { repo: string; ref: string } {
  let rest = name.slice(name.indexOf('/') + 1);
  const at = rest.indexOf('@');
  if (at > 0) return { repo: rest.slice(0, at), ref: rest.slice(at + 1) };
  const colon = rest.lastIndexOf(':');
  if (!tag && colon > 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  return { repo: rest, ref: tag || 'latest' };
}

export async function startStandInEngine(socket: string, registryUrl: string): Promise<StandInEngine> {
  rmSync(socket, { force: true });
  const pulls: string[] = [];
  const manifest = async (repo: string, ref: string) => {
    const r = await fetch(`${registryUrl}/v2/${repo}/manifests/${ref}`, { headers: { accept: ACCEPT } });
    if (!r.ok) return null;
    const body = Buffer.from(await r.arrayBuffer());
    return { digest: r.headers.get('docker-content-digest')!, size: body.length };
  };
  const server = http.createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://engine');
      const path = url.pathname.replace(/^\/v[0-9.]+/, '');
      res.setHeader('Api-Version', '1.45');
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (path === '/_ping') {
        res.setHeader('content-type', 'text/plain');
        return void res.end('OK');
      }
      let m = /^\/images\/(.+)\/json$/.exec(path);
      if (m && req.method === 'GET') {
        const { repo, ref } = split(decodeURIComponent(m[1]!), null);
        const man = await manifest(repo, ref);
        if (!man) return json(404, { message: 'No such image' });
        return json(200, { Id: man.digest, RepoTags: [decodeURIComponent(m[1]!)], RepoDigests: [] });
      }
      m = /^\/images\/(.+)\/push$/.exec(path);
      if (m && req.method === 'POST') {
        const { repo, ref } = split(decodeURIComponent(m[1]!), url.searchParams.get('tag'));
        const man = await manifest(repo, ref);
        res.setHeader('content-type', 'application/json');
        if (!man) return void res.end(JSON.stringify({ errorDetail: { message: 'manifest unknown' }, error: 'manifest unknown' }) + '\n');
        res.write(JSON.stringify({ status: `${ref}: digest: ${man.digest} size: ${man.size}` }) + '\n');
        return void res.end(JSON.stringify({ progressDetail: {}, aux: { Tag: ref, Digest: man.digest, Size: man.size } }) + '\n');
      }
      if (path === '/images/create' && req.method === 'POST') {
        const from = url.searchParams.get('fromImage') ?? '';
        const tag = url.searchParams.get('tag') ?? '';
        const { repo } = split(from, null);
        const man = tag.startsWith('sha256:') ? await manifest(repo, tag) : null;
        res.setHeader('content-type', 'application/json');
        if (!man)
          return void res.end(JSON.stringify({ errorDetail: { message: `pull ${from}:${tag} refused: only pulls by digest` }, error: 'not by digest' }) + '\n');
        pulls.push(`${from}@${tag}`);
        return void res.end(
          JSON.stringify({ status: `Digest: ${man.digest}` }) + '\n' + JSON.stringify({ status: `Status: Downloaded newer image for ${from}@${tag}` }) + '\n',
        );
      }
      m = /^\/images\/(.+)\/tag$/.exec(path);
      if (m && req.method === 'POST') {
        res.writeHead(201);
        return void res.end();
      }
      json(404, { message: `not supported: ${req.method} ${path}` });
    })().catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(JSON.stringify({ message: err.message }));
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return {
    socket,
    pulls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
