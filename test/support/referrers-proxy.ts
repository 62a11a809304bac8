/**
 * The OCI 1.1 referrers API in front of a real registry that lacks it (the Debian docker-registry
 * is distribution 2.8): requests go through to the registry unchanged, except that a manifest PUT
 * whose body names a `subject` is remembered and answered with `OCI-Subject`, and
 * `GET /v2/<name>/referrers/<digest>` lists what was remembered, as distribution 3, zot or Harbor
 * do. It lets tests drive the client's API path against real storage.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReferrersProxy {
  host: string;
  /** How many referrers-API requests were answered. */
  referrersRequests(): number;
  stop(): Promise<void>;
}

export async function startReferrersProxy(upstream: string): Promise<ReferrersProxy> {
  const referrers = new Map<string, object[]>();
  let asked = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const url = req.url ?? '/';
      const listing = /^\/v2\/(.+)\/referrers\/(sha256:[a-f0-9]{64})(?:\?.*)?$/.exec(url);
      if (req.method === 'GET' && listing) {
        asked++;
        const manifests = referrers.get(`${listing[1]}@${listing[2]}`) ?? [];
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json' });
        res.end(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
        return;
      }
      const put = /^\/v2\/(.+)\/manifests\/([^/?]+)$/.exec(url);
      let subject: string | undefined;
      if (req.method === 'PUT' && put) {
        try {
          const m = JSON.parse(body.toString()) as {
            subject?: { digest?: string };
            artifactType?: string;
            annotations?: Record<string, string>;
            config?: { mediaType?: string };
          };
          if (m.subject?.digest) {
            subject = m.subject.digest;
            const key = `${put[1]}@${subject}`;
            const entry = {
              mediaType: req.headers['content-type'],
              digest: `sha256:${createHash('sha256').update(body).digest('hex')}`,
              size: body.length,
              artifactType: m.artifactType ?? m.config?.mediaType,
              ...(m.annotations ? { annotations: m.annotations } : {}),
            };
            referrers.set(key, [...(referrers.get(key) ?? []), entry]);
          }
        } catch {
          // not JSON: the registry will refuse it
        }
      }
      const forward = http.request(`http://${upstream}${url}`, { method: req.method, headers: { ...req.headers, host: upstream } }, (up) => {
        const headers = { ...up.headers };
        if (subject && (up.statusCode ?? 0) < 300) headers['oci-subject'] = subject;
        if (typeof headers.location === 'string') headers.location = headers.location.replace(`http://${upstream}`, '');
        res.writeHead(up.statusCode ?? 502, headers);
        up.pipe(res);
      });
      forward.on('error', () => {
        res.writeHead(502);
        res.end();
      });
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    referrersRequests: () => asked,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
