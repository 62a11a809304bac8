/**
 * Registry tokens minted by the tests themselves, for the cases a real token service never
 * issues (expired, another issuer or audience, an untrusted key): a signing key with its own
 * certificate, and `mint()` for claims and header overrides.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { signJws, type JwsHeader } from '../../src/auth/jws.js';
import { selfSignedCertificate } from '../../src/auth/self-signed-certificate.js';
import { x5cOf } from './certificates.js';

export interface Grant {
  type: string;
  name: string;
  actions: string[];
}

export const repoGrant = (name: string, ...actions: string[]): Grant => ({ type: 'repository', name, actions });
export const catalogGrant = (...actions: string[]): Grant => ({ type: 'registry', name: 'catalog', actions });

export interface TokenSigner {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The signer's self-signed certificate (PEM), for a root certificate bundle. */
  certPem: string;
  /** Header `x5c` naming this signer's certificate. */
  x5c: string[];
  /**
   * A token: `iss`/`aud` as configured, valid from 1 s ago for 5 minutes, no access unless given.
   * Claims set to `undefined` are left out; `header` replaces fields of `{alg:'ES256',typ:'JWT',x5c}`.
   */
  mint(claims?: Record<string, unknown>, header?: Partial<JwsHeader> & Record<string, unknown>): string;
}

export function tokenSigner(opts: { issuer: string; service: string; commonName?: string; nowMs?: () => number }): TokenSigner {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const certPem = selfSignedCertificate(privateKey, publicKey, { commonName: opts.commonName ?? `${opts.issuer} test signer` });
  const x5c = [x5cOf(certPem)];
  return {
    privateKey,
    publicKey,
    certPem,
    x5c,
    mint(claims = {}, header = {}) {
      const now = Math.floor((opts.nowMs?.() ?? Date.now()) / 1000);
      const payload: Record<string, unknown> = {
        iss: opts.issuer,
        sub: 'test-user',
        aud: opts.service,
        exp: now + 300,
        nbf: now - 1,
        iat: now,
        jti: `jti-${now}-${Math.random().toString(36).slice(2)}`,
        access: [],
        ...claims,
      };
      for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k];
      const h: Record<string, unknown> = { alg: 'ES256', typ: 'JWT', x5c, ...header };
      for (const k of Object.keys(h)) if (h[k] === undefined) delete h[k];
      return signJws(h as unknown as JwsHeader, payload, privateKey);
    },
  };
}
