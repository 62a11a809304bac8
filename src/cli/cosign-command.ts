/**
 * `signet cosign …`: Cosign key-pair signatures from the command line, in the formats and with the
 * key files the real `cosign` uses (so either tool verifies what the other signs), and
 * `import-notary`, which gives every digest a Notary v1 repository signs a Cosign signature too.
 * Exit status as `signet trust`'s: 0 done, 1 refused or not verified, 2 a usage or configuration
 * mistake (a missing key or password among them). Errors are one line, never a stack trace, and
 * never carry a password or key material.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { signetErrorCode } from '../tuf/core/signet-error.js';
import { TrustClient, type TrustClientOptions } from '../client/trust-client.js';
import { ClientError } from '../client/errors.js';
import { signedTags } from '../client/signed-state.js';
import { parseImageReference, type ImageReference } from '../registry/index.js';
import {
  CosignError,
  DEFAULT_SCRYPT_N,
  cosignPassword,
  generateCosignKeyPair,
  importNotarySignatures,
  loadSigningKey,
  loadVerificationKey,
  signImageDigest,
  verifyCosignSignatures,
  type SignFormat,
  type SignatureFormat,
} from '../cosign/index.js';
import { parseCommand, UsageError, usageMessage, type Args, type CommandSpec, type OptionSpec } from './args.js';
import { progressLine } from './progress.js';

z.config({ jitless: true });

const REGISTRY_OPTIONS: Record<string, OptionSpec> = {
  'registry-ca': { type: 'string' },
  'insecure-registry': { type: 'string', multiple: true },
  json: { type: 'boolean' },
};
const REGISTRY_HELP = `registry options:
  --registry-ca FILE      CA bundle for the registry (also $DOCKER_CONFIG/certs.d/<host>/ca.crt)
  --insecure-registry H   reach registry H over plain http (loopback registries always may)
  --json                  print the result as JSON
Credentials come from $DOCKER_CONFIG/config.json (docker login). Keys: a file, or env://NAME for
a key held in a variable. The private key's password: COSIGN_PASSWORD (it may be empty), else a
prompt on a terminal.
Exit status: 0 done, 1 refused or not verified, 2 usage or configuration error.`;

const TRUST_OPTIONS: Record<string, OptionSpec> = {
  server: { type: 'string' },
  tlscacert: { type: 'string' },
  'trust-dir': { type: 'string' },
  'pin-cert': { type: 'string', multiple: true },
  'pin-ca': { type: 'string' },
  'no-tofu': { type: 'boolean' },
};

const USAGE = `usage: signet cosign <command> [options]      (signet cosign <command> --help describes one)

Cosign key-pair signatures, interchangeable with the cosign tool's, and a way off Docker Content Trust.

commands:
  generate-key-pair [--output-key-prefix P]        write cosign.key (encrypted) and cosign.pub
  sign --key KEY IMAGE[:TAG|@DIGEST]...            sign image digests (tag format by default)
  verify --key KEY IMAGE[:TAG|@DIGEST]             check that the key signed the image's digest
  import-notary REPO --key KEY [--signer NAME]     a Cosign signature for every digest REPO's
                                                   Notary v1 trust data signs (idempotent)

${REGISTRY_HELP}`;

const FORMAT_HELP = '  --format F              tag (cosign ≤ 2, read by every cosign: the default), bundle (cosign 3), or both';

const SPECS = {
  'generate-key-pair': {
    name: 'cosign generate-key-pair',
    usage: `usage: signet cosign generate-key-pair [--output-key-prefix PREFIX] [--force]

Generate an ECDSA P-256 key pair as \`cosign generate-key-pair\` does: PREFIX.key, the private key
encrypted with the password (scrypt N=${DEFAULT_SCRYPT_N} and NaCl secretbox, PEM "ENCRYPTED SIGSTORE
PRIVATE KEY", mode 0600), and PREFIX.pub, its public key (PEM). PREFIX defaults to "cosign".
The password is COSIGN_PASSWORD when set (it may be empty), else asked twice on a terminal.
Existing files are not overwritten unless --force.`,
    options: { 'output-key-prefix': { type: 'string' }, force: { type: 'boolean' }, json: { type: 'boolean' } },
    positionals: [],
  },
  sign: {
    name: 'cosign sign',
    usage: `usage: signet cosign sign --key KEY IMAGE[:TAG|@DIGEST]... [--format tag|bundle|both] [-a KEY=VALUE]...

Sign each image's manifest digest (a tag is resolved to its digest first) with the cosign private
key KEY, and push the signature to the image's repository: the tag format (a sha256-<hex>.sig
manifest), the bundle format (a Sigstore bundle as an OCI referrer), or both. Nothing is sent to
a transparency log; verify with \`cosign verify --key cosign.pub --insecure-ignore-tlog=true\`.

  --key KEY               the private key (cosign.key, or env://NAME)
${FORMAT_HELP}
  -a, --annotation K=V    a claim signed with the digest (repeatable)

${REGISTRY_HELP}`,
    options: {
      ...REGISTRY_OPTIONS,
      key: { type: 'string' },
      format: { type: 'string' },
      annotation: { type: 'string', multiple: true, short: 'a' },
    },
    positionals: ['IMAGE', '...?'],
  },
  verify: {
    name: 'cosign verify',
    usage: `usage: signet cosign verify --key KEY IMAGE[:TAG|@DIGEST] [--format tag|bundle|both]

Check that KEY (cosign.pub, or env://NAME) signed the image's manifest digest, in either storage
format (both by default), as \`cosign verify --key\` does: the signature must verify with the key
and what it signs must name this digest. Transparency-log entries are not checked (offline, key
only). Exit status 1, with the reasons, when no signature by the key is found.

  --key KEY               the public key
  --format F              the formats looked at: tag, bundle or both (default)

${REGISTRY_HELP}`,
    options: { ...REGISTRY_OPTIONS, key: { type: 'string' }, format: { type: 'string' } },
    positionals: ['IMAGE'],
  },
  'import-notary': {
    name: 'cosign import-notary',
    usage: `usage: signet cosign import-notary REPO --key KEY [--signer NAME] [--dry-run] [--format tag|bundle|both] [--concurrency N]

Verify REPO's Notary v1 trust data (Signet or notary-server, as signet trust does), then sign each
digest its signed tags name, once per digest, with the cosign private key KEY. A digest that has a
signature by this key already is skipped, so the command can be run again at any time and resumes
an interrupted run. Prints what it signed and what it skipped, and why (--json: a report).

  --key KEY               the cosign private key (cosign.key, or env://NAME)
  --signer NAME           only digests that Notary signer NAME signed ("Repo Admin": the repository key)
  --dry-run               report what would be signed; write nothing
${FORMAT_HELP}
  --concurrency N         digests signed at once (default 8)
  --server URL            trust server (default $DOCKER_CONTENT_TRUST_SERVER, else https://<registry>)
  --tlscacert FILE        CA bundle for the trust server
  --trust-dir DIR         trusted metadata (default $DOCKER_CONFIG/trust)
  --pin-cert ID / --pin-ca FILE / --no-tofu   trust pinning for a repository not seen before

${REGISTRY_HELP}`,
    options: {
      ...REGISTRY_OPTIONS,
      ...TRUST_OPTIONS,
      key: { type: 'string' },
      signer: { type: 'string' },
      'dry-run': { type: 'boolean' },
      format: { type: 'string' },
      concurrency: { type: 'string' },
    },
    positionals: ['REPO'],
  },
} satisfies Record<string, CommandSpec>;

type Command = keyof typeof SPECS;

/** Codes that are the user's mistake (exit 2); every other failure exits 1. */
const MISTAKES = new Set([
  'USAGE',
  'BAD_INPUT',
  'BAD_REFERENCE',
  'DOCKER_CONFIG',
  'KEY_UNREADABLE',
  'KEY_NOT_FOUND',
  'KEY_UNSUPPORTED',
  'KEY_WRITE_FAILED',
  'PASSWORD_REQUIRED',
  'PASSWORD_WRONG',
]);

function print(a: Args, json: unknown, text: string): void {
  if (a.flag('json')) console.log(JSON.stringify(json, null, 2));
  else if (text) console.log(text);
}

function requireKey(a: Args, command: string): string {
  const key = a.string('key');
  if (!key) throw new UsageError('--key KEY is needed (a key file or env://NAME)', command);
  return key;
}

function signFormat(a: Args, command: string, fallback: SignFormat): SignFormat {
  const format = a.string('format') ?? fallback;
  if (format !== 'tag' && format !== 'bundle' && format !== 'both')
    throw new UsageError(`--format must be tag, bundle or both, got ${JSON.stringify(format)}`, command);
  return format;
}

function annotations(a: Args, command: string): Record<string, string> | undefined {
  const pairs = a.strings('annotation');
  if (pairs.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`-a takes KEY=VALUE, got ${JSON.stringify(pair)}`, command);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

function clientFor(a: Args, readText: (file: string) => string): TrustClient {
  const options: TrustClientOptions = {};
  const registryCa = a.string('registry-ca');
  if (registryCa) options.registryCa = readText(registryCa);
  const insecure = a.strings('insecure-registry');
  if (insecure.length) options.insecureRegistries = insecure;
  const server = a.string('server');
  if (server) options.server = server;
  const ca = a.string('tlscacert');
  if (ca) options.serverCa = readText(ca);
  const dir = a.string('trust-dir');
  if (dir) options.trustDir = dir;
  const certs = a.strings('pin-cert');
  const pinCa = a.string('pin-ca');
  if (certs.length || pinCa || a.flag('no-tofu')) {
    options.pinning = {
      ...(certs.length ? { certs } : {}),
      ...(pinCa ? { ca: readText(pinCa) } : {}),
      ...(a.flag('no-tofu') ? { disableTofu: true } : {}),
    };
  }
  return new TrustClient(options);
}

/** IMAGE[:TAG|@DIGEST] and the digest it names (a tag resolved through the registry). */
async function digestOf(client: TrustClient, image: string): Promise<{ ref: ImageReference; digest: string }> {
  const ref = parseImageReference(image);
  const digest = ref.digest ?? (await client.registry.resolveManifest(ref)).digest;
  return { ref, digest };
}

function writeNew(file: string, text: string, mode: number, force: boolean): void {
  try {
    writeFileSync(file, text, { mode, flag: force ? 'w' : 'wx' });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CosignError(
      'KEY_WRITE_FAILED',
      code === 'EEXIST' ? `${file} exists already (--force overwrites it)` : `cannot write ${file} (${code ?? 'error'})`,
    );
  }
}

async function run(command: Command, a: Args, client: TrustClient): Promise<number> {
  const p = a.positionals;
  switch (command) {
    case 'generate-key-pair': {
      const prefix = a.string('output-key-prefix') ?? 'cosign';
      const [keyFile, pubFile] = [`${prefix}.key`, `${prefix}.pub`];
      const password = await cosignPassword(keyFile, true);
      const pair = await generateCosignKeyPair(password);
      writeNew(keyFile, pair.privatePem, 0o600, a.flag('force'));
      writeNew(pubFile, pair.publicPem, 0o644, a.flag('force'));
      print(a, { privateKey: keyFile, publicKey: pubFile }, `Private key written to ${keyFile}\nPublic key written to ${pubFile}`);
      return 0;
    }
    case 'sign': {
      const keyRef = requireKey(a, 'cosign sign');
      const format = signFormat(a, 'cosign sign', 'tag');
      const claims = annotations(a, 'cosign sign');
      // Every reference is read before the key is opened, so a typo costs no password prompt.
      for (const image of p) parseImageReference(image);
      const key = await loadSigningKey(keyRef);
      const results = [];
      for (const image of p) {
        const { ref, digest } = await digestOf(client, image);
        const result = await signImageDigest(client.registry, ref, digest, key, { format, ...(claims ? { annotations: claims } : {}) });
        results.push({ image, name: ref.name, ...result });
      }
      print(
        a,
        results,
        results
          .map((r) => {
            const where = [
              r.tag ? `${r.tag.written ? 'pushed' : 'already there'}: ${r.name}:${r.tag.tag}` : '',
              r.bundle ? `bundle ${r.bundle.manifestDigest} (referrer, ${r.bundle.via === 'api' ? 'referrers API' : 'sha256-<hex> index'})` : '',
            ].filter(Boolean);
            return `Signed ${r.name}@${r.digest}: ${where.join('; ')}`;
          })
          .join('\n'),
      );
      return 0;
    }
    case 'verify': {
      const keyRef = requireKey(a, 'cosign verify');
      const format = signFormat(a, 'cosign verify', 'both');
      const key = await loadVerificationKey(keyRef);
      const { ref, digest } = await digestOf(client, p[0]!);
      const formats: SignatureFormat[] = format === 'both' ? ['tag', 'bundle'] : [format];
      const result = await verifyCosignSignatures(client.registry, ref, digest, { keys: new Map([[keyRef, key]]), formats });
      const verified = result.signers.length > 0;
      if (a.flag('json')) console.log(JSON.stringify({ verified, image: p[0], name: ref.name, ...result }, null, 2));
      if (!verified) {
        const why = result.found === 0 ? 'no signatures found' : result.problems.join('; ');
        throw new CosignError('NOT_VERIFIED', `${ref.name}@${digest}: no signature by ${keyRef}: ${why}`);
      }
      if (!a.flag('json')) {
        const how = result.evidence.map((e) => `${e.format} format${e.tlog === 'ignored' ? ' (transparency-log entry not checked)' : ''}`);
        console.error(
          `Verification for ${ref.name}@${digest} --\nThe following checks were performed on each of these signatures:\n  - The cosign claims were validated\n  - The signatures were verified against the specified public key`,
        );
        console.log(`${ref.name}@${digest} signed by ${keyRef} (${how.join(', ')})`);
      }
      return 0;
    }
    case 'import-notary': {
      const keyRef = requireKey(a, 'cosign import-notary');
      const format = signFormat(a, 'cosign import-notary', 'tag');
      const concurrencyText = a.string('concurrency');
      if (concurrencyText !== undefined && !/^([1-9]|[1-5][0-9]|6[0-4])$/.test(concurrencyText))
        throw new UsageError(`--concurrency must be a number from 1 to 64, got ${JSON.stringify(concurrencyText)}`, 'cosign import-notary');
      const ref = parseImageReference(p[0]!);
      if (ref.tag !== undefined) throw new UsageError(`REPO is a repository without a tag, got ${JSON.stringify(p[0])}`, 'cosign import-notary');
      if (ref.digest) throw new UsageError(`REPO is a repository without a digest, got ${JSON.stringify(p[0])}`, 'cosign import-notary');
      const key = await loadSigningKey(keyRef);
      const set = await client.trustedState(ref);
      const tags = signedTags(set).map((row) => ({
        tag: row.SignedTag,
        digest: `sha256:${row.Digest}`,
        signers: row.Signers.length ? row.Signers : ['Repo Admin'],
      }));
      const tick = progressLine();
      const signer = a.string('signer');
      const report = await importNotarySignatures(client.registry, ref, tags, key, {
        format,
        dryRun: a.flag('dry-run'),
        ...(signer !== undefined ? { signer } : {}),
        ...(concurrencyText ? { concurrency: Number(concurrencyText) } : {}),
        onProgress: (done, total) => tick(done, total, `digests of ${ref.name}`),
      });
      const verb = report.dryRun ? 'would sign' : 'signed';
      print(
        a,
        report,
        [
          ...report.signed.map((e) => `${verb} ${e.digest} (${e.tags.join(', ')})`),
          ...report.skipped.map((e) => `skipped ${e.digest} (${e.tags.join(', ')}): ${e.reason}`),
          ...report.failed.map((e) => `failed ${e.digest} (${e.tags.join(', ')}): ${e.reason}`),
          `${ref.name}: ${report.counts.tags} signed tags, ${report.counts.digests} digests: ${report.counts.signed} ${verb}, ${report.counts.skipped} skipped, ${report.counts.failed} failed`,
        ].join('\n'),
      );
      return report.counts.failed > 0 ? 1 : 0;
    }
  }
}

/** Runs `signet cosign …`; returns the exit code. */
export async function runCosignCommand(argv: string[]): Promise<number> {
  const wantsJson = argv.includes('--json');
  let client: TrustClient | undefined;
  try {
    const first = argv[1];
    if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
      (first === undefined ? console.error : console.log)(USAGE);
      return first === undefined ? 2 : 0;
    }
    if (!Object.hasOwn(SPECS, first)) throw new UsageError(`unknown command ${JSON.stringify(first)}`, 'cosign');
    const command = first as Command;
    const a = parseCommand(SPECS[command], argv.slice(2));
    if (!a) return 0;
    client = clientFor(a, (file) => {
      try {
        return readFileSync(file, 'utf8');
      } catch (error) {
        throw new ClientError('BAD_INPUT', `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
      }
    });
    return await run(command, a, client);
  } catch (err) {
    const code = signetErrorCode(err) ?? 'INTERNAL';
    const message = err instanceof UsageError ? usageMessage(err) : `signet cosign: ${err instanceof Error ? err.message : String(err)}`;
    if (wantsJson) console.log(JSON.stringify({ error: { code, message } }, null, 2));
    console.error(message);
    return MISTAKES.has(code) ? 2 : 1;
  } finally {
    client?.close();
  }
}
