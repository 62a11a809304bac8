/**
 * Mutual TLS (SIGNET_TLS_CLIENT_CA): only clients presenting a certificate signed by the
 * configured CA complete the handshake; no certificate, or one from another CA, gets no HTTP
 * answer at all. Certificates come from the openssl command line.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../support/server.js';
import { makeTestTls, type TestTls } from '../support/tls.js';

interface ClientIdentity {
  cert: Buffer;
  key: Buffer;
}

let tls: TestTls;
let server: TestServer;
let good: ClientIdentity;
let foreign: ClientIdentity;

/** A CA (`<name>-ca.crt`) and a client certificate it signed (`<name>-client.crt/.key`), in tls.dir. */
function clientCa(dir: string, name: string): { caCert: string; client: ClientIdentity } {
  const f = (file: string) => path.join(dir, `${name}-${file}`);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.crt'),
    '-days',
    '2',
    '-subj',
    `/CN=${name} client CA`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  openssl(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    f('client.key'),
    '-out',
    f('client.csr'),
    '-subj',
    `/CN=${name} client`,
  );
  writeFileSync(f('client.cnf'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
  openssl(
    'x509',
    '-req',
    '-in',
    f('client.csr'),
    '-CA',
    f('ca.crt'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-out',
    f('client.crt'),
    '-days',
    '2',
    '-extfile',
    f('client.cnf'),
  );
  return { caCert: f('ca.crt'), client: { cert: readFileSync(f('client.crt')), key: readFileSync(f('client.key')) } };
}

interface Reply {
  status: number;
  body: string;
  authorized: boolean;
}

/** GET over HTTPS trusting the test CA for the server, with an optional client identity; a fresh connection each time. */
function get(urlPath: string, client?: ClientIdentity, extra: https.RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      new URL(urlPath, server.url),
      { method: 'GET', ca: readFileSync(tls.caCert), agent: false, ...(client ? { cert: client.cert, key: client.key } : {}), ...extra },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, authorized: (res.socket as import('node:tls').TLSSocket).authorized }));
        res.on('error', reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  tls = makeTestTls();
  const trusted = clientCa(tls.dir, 'trusted');
  const other = clientCa(tls.dir, 'other');
  good = trusted.client;
  foreign = other.client;
  server = await startTestServer({ SIGNET_TLS_CERT: tls.cert, SIGNET_TLS_KEY: tls.key, SIGNET_TLS_CLIENT_CA: trusted.caCert });
});

after(async () => {
  await server?.close();
  if (tls) rmSync(tls.dir, { recursive: true, force: true });
});

describe('mutual TLS', () => {
  test('the server listens on https', () => {
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  });

  test('a client certificate signed by SIGNET_TLS_CLIENT_CA is accepted', async () => {
    const ping = await get('/v2/', good);
    assert.equal(ping.status, 200, ping.body);
    assert.equal(ping.body, '{}');
    assert.equal(ping.authorized, true, 'the client verified the server certificate');
    const health = await get('/_notary_server/health', good);
    assert.equal(health.status, 200);
    const missing = await get('/v2/example.com/app/_trust/tuf/root.json', good);
    assert.equal(missing.status, 404, 'an ordinary notary answer once the handshake succeeded');
  });

  test('without a client certificate the handshake fails: no HTTP answer, not even for health', async () => {
    for (const urlPath of ['/v2/', '/_notary_server/health']) {
      // TLS 1.3: the server's "certificate required" alert.
      await assert.rejects(get(urlPath), { code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' }, urlPath);
    }
    // TLS 1.2: a handshake failure alert.
    await assert.rejects(
      get('/v2/', undefined, { maxVersion: 'TLSv1.2' }),
      (e: NodeJS.ErrnoException) => e.code === 'EPROTO' && /alert handshake failure/.test(e.message),
    );
  });

  test('a client certificate from another CA fails: the server drops the connection', async () => {
    await assert.rejects(get('/v2/', foreign), { code: 'ECONNRESET' }, 'TLS 1.3');
    await assert.rejects(get('/v2/', foreign, { maxVersion: 'TLSv1.2' }), { code: 'ECONNRESET' }, 'TLS 1.2');
    // The same client is fine with the right certificate: the refusal is about the CA only.
    assert.equal((await get('/v2/', good, { maxVersion: 'TLSv1.2' })).status, 200);
  });

  test('a certificate from the server’s CA is no client credential either', async () => {
    await assert.rejects(get('/v2/', { cert: readFileSync(tls.cert), key: readFileSync(tls.key) }), { code: 'ECONNRESET' });
  });

  test('TLS older than 1.2 is refused by the server ("protocol version" alert)', async () => {
    // The client is allowed TLS 1.0/1.1 explicitly, so the refusal is the server's.
    await assert.rejects(
      get('/v2/', good, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' }),
      (e: NodeJS.ErrnoException) => e.code === 'EPROTO' && /alert protocol version/.test(e.message),
    );
  });
});
