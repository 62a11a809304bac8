/**
 * A stand-in Rekor for tests (no network, no real log): a log key, and transparency-log entries
 * for key-signed DSSE bundles as Rekor v1 returns them to cosign 3 (kind `dsse` 0.0.1, an
 * inclusion promise, and an inclusion proof in a one-entry tree with a signed checkpoint), so
 * that a bundle's entry can be verified with the log's public key and nothing else.
 */
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { json } from '@sigstore/core';

export interface TestRekor {
  publicKey: KeyObject;
  publicPem: string;
  /** The bundle (JSON bytes) with one transparency-log entry for its DSSE envelope added. */
  addEntry(bundle: Buffer, signerPublicKey: KeyObject): Buffer;
}

const sha256 = (...parts: Buffer[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** `origin` is the checkpoint's first line; `name` the signer name on its signature line (Rekor's host). */
export function makeTestRekor(options: { name?: string; origin?: string } = {}): TestRekor {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const name = options.name ?? 'rekor.example.com';
  const origin = options.origin ?? `${name} - 1193050959916656506`;
  const logId = sha256(publicKey.export({ type: 'spki', format: 'der' }));
  return {
    publicKey,
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
    addEntry(bundleBytes, signerPublicKey) {
      const bundle = JSON.parse(bundleBytes.toString('utf8')) as {
        dsseEnvelope: { payload: string; payloadType: string; signatures: { sig: string }[] };
        verificationMaterial: { tlogEntries: unknown[] };
      };
      const envelope = bundle.dsseEnvelope;
      const body = Buffer.from(
        JSON.stringify({
          apiVersion: '0.0.1',
          kind: 'dsse',
          spec: {
            envelopeHash: { algorithm: 'sha256', value: sha256(Buffer.from(JSON.stringify(envelope))).toString('hex') },
            payloadHash: { algorithm: 'sha256', value: sha256(Buffer.from(envelope.payload, 'base64')).toString('hex') },
            signatures: [
              {
                signature: envelope.signatures[0]!.sig,
                verifier: Buffer.from(signerPublicKey.export({ type: 'spki', format: 'pem' }) as string).toString('base64'),
              },
            ],
          },
        }),
      );
      const integratedTime = Math.floor(Date.now() / 1000) - 60;
      const promise = json.canonicalize({ body: body.toString('base64'), integratedTime, logIndex: 0, logID: logId.toString('hex') });
      const set = sign('sha256', Buffer.from(promise, 'utf8'), privateKey);
      // A tree of one entry: its root is the leaf's hash, the proof has no hashes.
      const root = sha256(Buffer.from([0]), body);
      const note = `${origin}\n1\n${root.toString('base64')}\n`;
      const noteSignature = sign('sha256', Buffer.from(note, 'utf8'), privateKey);
      const checkpoint = `${note}\n\u2014 ${name} ${Buffer.concat([logId.subarray(0, 4), noteSignature]).toString('base64')}\n`;
      bundle.verificationMaterial.tlogEntries = [
        {
          logIndex: '0',
          logId: { keyId: logId.toString('base64') },
          kindVersion: { kind: 'dsse', version: '0.0.1' },
          integratedTime: String(integratedTime),
          inclusionPromise: { signedEntryTimestamp: set.toString('base64') },
          inclusionProof: { logIndex: '0', rootHash: root.toString('base64'), treeSize: '1', hashes: [], checkpoint: { envelope: checkpoint } },
          canonicalizedBody: body.toString('base64'),
        },
      ];
      return Buffer.from(JSON.stringify(bundle));
    },
  };
}
