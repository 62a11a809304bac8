/**
 * `signet trust …` and `signet verify`: docker trust's verbs over the client SDK
 * (src/client/trust-client.ts), with `--json` everywhere and pipeline-friendly exit codes:
 * 0 done, 1 refused or not verified, 2 a usage or configuration mistake. Errors are one line
 * naming the problem, never a stack trace.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import path from 'node:path';
import { signetErrorCode } from '../tuf/core/signet-error.js';
import { TrustClient, type TrustClientOptions } from '../client/trust-client.js';
import { publicKeyPem } from '../client/keys/index.js';
import { parseCommand, UsageError, usageMessage, type Args, type CommandSpec, type OptionSpec } from './args.js';
import { ClientError } from '../client/errors.js';
import { parsePublicKeyPem } from '../client/public-keys.js';
import { parseImageReference } from '../registry/index.js';
import type { StagedUpdate } from '../client/ceremony.js';
import { progressLine } from './progress.js';

// A short-lived process parses each schema a few times: zod's compiled fast path would not pay back.
z.config({ jitless: true });

const COMMON_OPTIONS: Record<string, OptionSpec> = {
  server: { type: 'string' },
  tlscacert: { type: 'string' },
  'trust-dir': { type: 'string' },
  'registry-ca': { type: 'string' },
  'insecure-registry': { type: 'string', multiple: true },
  'pin-cert': { type: 'string', multiple: true },
  'pin-ca': { type: 'string' },
  'no-tofu': { type: 'boolean' },
  json: { type: 'boolean' },
};

const COMMON_HELP = `common options:
  --server URL            trust server (default $DOCKER_CONTENT_TRUST_SERVER, else https://<registry>)
  --tlscacert FILE        CA bundle for the trust server (default $DOCKER_CONFIG/tls/<host:port>/ca.crt)
  --trust-dir DIR         keys and trusted metadata (default $DOCKER_CONFIG/trust, ~/.docker/trust)
  --registry-ca FILE      CA bundle for the registry (also $DOCKER_CONFIG/certs.d/<host>/ca.crt)
  --insecure-registry H   reach registry H over plain http (loopback registries always may)
  --pin-cert ID           trust a new repository's root only if it lists this root certificate key ID
  --pin-ca FILE           trust a new repository's root only if its certificates chain to this CA
  --no-tofu               never trust a new repository's root on first use (needs a pin)
  --json                  print the result as JSON
Passphrases: DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE, DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE or
NOTARY_{ROOT,TARGETS,SNAPSHOT,DELEGATION}_PASSPHRASE, else a prompt on a terminal.
Exit status: 0 done, 1 refused or not verified, 2 usage or configuration error.`;

const TRUST_USAGE = `usage: signet trust <command> [options]      (signet trust <command> --help describes one)

Sign images and manage who may sign them, as docker trust does, against any Notary v1 server.

commands:
  key generate NAME [--dir DIR] [--type ecdsa|ed25519]   a signing key; writes DIR/NAME.pub
  key load FILE --name NAME                              import a private key as signer NAME
  key rotate REPO ROLE [--server-managed]                a new targets or snapshot key (or the server's)
  signer add --key FILE... [--threshold N] NAME REPO     let NAME sign tags of REPO
  signer add --server-held NAME REPO                     delegate to Signet's server-held signer NAME
  signer remove [--force] NAME REPO                      stop NAME signing tags of REPO
  sign IMAGE:TAG... [--signer NAME] [--digest D --size N] sign tags (digest from the registry)
       [--cosign-key KEY]                                 and push a Cosign signature of each digest too
  sign IMAGE:TAG --remote-signer NAME                    have Signet sign it with server-held signer NAME
  revoke IMAGE[:TAG]                                     remove the signature of a tag (or all)
  inspect [--pretty] IMAGE[:TAG]...                      keys and signatures (docker trust inspect's JSON)

key ceremonies (threshold signing in rounds, on a Signet server):
  key generate NAME --root REPO [--dir DIR]              a holder's root key; writes DIR/NAME.crt
  stage root-rotate REPO [--new-key FILE]... [--keep-current] [--threshold N]
                                                         stage a new root; signs with the root keys held here
  stage list [REPO] [--state S]                          pending staged updates (all repositories without REPO)
  stage show ID                                          what is signed, the diff, who still has to sign
  sign IMAGE:TAG --stage --role ROLE                     stage a signature other holders must add to
  stage sign ID                                          sign with the local key that may sign it
  stage cancel ID                                        cancel it

See also: signet verify IMAGE[:TAG|@DIGEST] [--signer NAME]... [--threshold N]

${COMMON_HELP}`;

function spec(name: string, usage: string, options: Record<string, OptionSpec> = {}, positionals: string[] = []): CommandSpec {
  return { name, usage: `${usage}\n\n${COMMON_HELP}`, options: { ...COMMON_OPTIONS, ...options }, positionals };
}

const SPECS = {
  'key generate': spec(
    'trust key generate',
    'usage: signet trust key generate NAME [--dir DIR] [--type ecdsa|ed25519] [--root REPO]\n\nGenerate a signing key for signer NAME (ECDSA P-256 by default), store it encrypted in the\ntrust directory, and write its public key to DIR/NAME.pub (default: the current directory).\nWith --root REPO: a root key for a key ceremony of REPO, and its certificate in DIR/NAME.crt.',
    { dir: { type: 'string' }, type: { type: 'string' }, root: { type: 'string' } },
    ['NAME'],
  ),
  'key load': spec(
    'trust key load',
    'usage: signet trust key load FILE --name NAME\n\nImport a PEM private key (encrypted or not) as a key of signer NAME.',
    { name: { type: 'string' } },
    ['FILE'],
  ),
  'key rotate': spec(
    'trust key rotate',
    'usage: signet trust key rotate REPO ROLE [--server-managed]\n\nReplace the targets or snapshot key of REPO with a new key, or (--server-managed) hand the\nsnapshot or timestamp key to the trust server. Needs the root key.',
    { 'server-managed': { type: 'boolean' } },
    ['REPO', 'ROLE'],
  ),
  'signer add': spec(
    'trust signer add',
    'usage: signet trust signer add --key FILE... [--threshold N] NAME REPO\n       signet trust signer add --server-held NAME REPO\n\nDelegate to signer NAME (targets/NAME and targets/releases) with the public keys in FILE\n(PEM PUBLIC KEY or CERTIFICATE). Initialises REPO when it has no trust data. --threshold N:\nN of those keys must sign each version of targets/NAME (sign --stage, then stage sign).\n--server-held: NAME is a server-held signer of REPO on the trust server (Signet): its\ndelegation certificate is fetched from the server and delegated to in one step.',
    { key: { type: 'string', multiple: true }, threshold: { type: 'string' }, 'server-held': { type: 'boolean' } },
    ['NAME', 'REPO'],
  ),
  'signer remove': spec(
    'trust signer remove',
    'usage: signet trust signer remove [--force] NAME REPO\n\nRemove signer NAME from REPO. --force also when NAME is the last signer of targets/releases.',
    { force: { type: 'boolean' } },
    ['NAME', 'REPO'],
  ),
  sign: spec(
    'trust sign',
    "usage: signet trust sign IMAGE:TAG... [--signer NAME] [--digest sha256:… --size N] [--role ROLE]...\n\nSign each tag with the manifest digest and size the registry gives (or --digest/--size for one\ntag), into every delegation you hold a key for (targets when there are none). A repository\nwithout trust data is initialised with signer NAME (default: your registry user name).\n--stage --role ROLE: stage the signature for a key ceremony instead (a role whose threshold\nneeds other holders), signed with the keys held here; the others run stage sign.\n--remote-signer NAME: no key is used here: the trust server (Signet) signs the tag with its\nserver-held signer NAME, if NAME's rules admit your token, and publishes it. --id-token\nFILE|env://NAME: authenticate with this OIDC ID token of your CI system instead of registry\ncredentials; --scan-report FILE: the scan report (Trivy or Grype JSON, SARIF) the signer checks.\n--cosign-key KEY: also sign each digest with this cosign private key (file or env://NAME,\npassword COSIGN_PASSWORD) and push the Cosign signature (--cosign-format tag|bundle|both,\ndefault tag): one step writes both kinds of signature.",
    {
      signer: { type: 'string' },
      'remote-signer': { type: 'string' },
      'id-token': { type: 'string' },
      'scan-report': { type: 'string' },
      digest: { type: 'string' },
      size: { type: 'string' },
      role: { type: 'string', multiple: true },
      'local-snapshot': { type: 'boolean' },
      stage: { type: 'boolean' },
      'cosign-key': { type: 'string' },
      'cosign-format': { type: 'string' },
    },
    ['IMAGE:TAG', '...?'],
  ),
  revoke: spec(
    'trust revoke',
    'usage: signet trust revoke IMAGE[:TAG] [--yes]\n\nRemove the signature of TAG, or of every signed tag of IMAGE, from the roles you can sign.',
    { yes: { type: 'boolean', short: 'y' } },
    ['IMAGE[:TAG]'],
  ),
  inspect: spec(
    'trust inspect',
    'usage: signet trust inspect [--pretty] IMAGE[:TAG]...\n\nThe signed tags, signers and administrative keys of each image, as docker trust inspect prints\nthem (JSON, or tables with --pretty).',
    { pretty: { type: 'boolean' } },
    ['IMAGE[:TAG]', '...?'],
  ),
  verify: spec(
    'verify',
    'usage: signet verify IMAGE[:TAG|@DIGEST] [--signer NAME]... [--threshold N]\n\nPrint the trusted digest of IMAGE:TAG (or the tag signed with DIGEST) and who signed it.\nWith --signer, those signers must have signed that digest (--threshold N: at least N of them).\nExit status 1, with the reason, when it is not trusted.',
    { signer: { type: 'string', multiple: true }, threshold: { type: 'string' } },
    ['IMAGE'],
  ),
  // ---- key ceremonies ----
  'stage root-rotate': spec(
    'trust stage root-rotate',
    "usage: signet trust stage root-rotate REPO [--new-key FILE]... [--keep-current] [--threshold N] [--expires-in SECONDS]\n\nStage a new root of REPO whose root keys are the certificates in FILE (each holder's, from\n`key generate NAME --root REPO`), plus the current root keys with --keep-current, or a new\nlocal root key when no --new-key is given; N signatures needed (default: the current\nthreshold). Signed here with every root key this machine holds; published at once when that\nis enough. Prints the staged update's ID for the other holders.",
    { 'new-key': { type: 'string', multiple: true }, 'keep-current': { type: 'boolean' }, threshold: { type: 'string' }, 'expires-in': { type: 'string' } },
    ['REPO'],
  ),
  'stage list': spec(
    'trust stage list',
    'usage: signet trust stage list [REPO] [--state pending|published|cancelled|expired|all]\n\nThe staged updates of REPO, or of every repository on the trust server (--server), pending\nones by default.',
    { state: { type: 'string' } },
    ['REPO?'],
  ),
  'stage show': spec(
    'trust stage show',
    'usage: signet trust stage show ID [--repo REPO]\n\nWhat staged update ID (REPO@ID, as stage list prints it) signs, how it differs from the\ncurrent version, which thresholds it still needs and which key IDs may still sign.',
    { repo: { type: 'string' } },
    ['ID'],
  ),
  'stage sign': spec(
    'trust stage sign',
    'usage: signet trust stage sign ID [--repo REPO]\n\nSign staged update ID with every key in the trust directory that may sign it. The update is\npublished when this signature meets its last threshold.',
    { repo: { type: 'string' } },
    ['ID'],
  ),
  'stage cancel': spec('trust stage cancel', 'usage: signet trust stage cancel ID [--repo REPO]\n\nCancel staged update ID.', { repo: { type: 'string' } }, [
    'ID',
  ]),
} satisfies Record<string, CommandSpec>;

const STAGE_STATES = new Set(['pending', 'published', 'cancelled', 'expired', 'all']);

function thresholdLines(staged: StagedUpdate): string[] {
  if (!staged.thresholds) return [];
  return staged.thresholds.map(
    (t) =>
      `  ${t.name}: ${t.signedBy.length} of ${t.threshold} signed${t.needed > 0 ? `, ${t.needed} more needed from ${t.pendingKeyIds.join(', ')}` : ' (met)'}`,
  );
}

function stagedSummary(staged: StagedUpdate): string {
  return [
    `${staged.gun}@${staged.id}  ${staged.role} version ${staged.version}  ${staged.state}  staged by ${staged.stagedBy}, expires ${staged.expiresAt}`,
    ...(staged.outdated ? [`  cannot be published: ${staged.outdated}`] : []),
    ...thresholdLines(staged),
  ].join('\n');
}

/** Codes that are the user's mistake (exit 2); every other failure exits 1. */
const MISTAKES = new Set([
  'USAGE',
  'BAD_INPUT',
  'BAD_REFERENCE',
  'PASSPHRASE_REQUIRED',
  'DOCKER_CONFIG',
  'KEY_UNREADABLE',
  // a --cosign-key that cannot be used
  'KEY_NOT_FOUND',
  'KEY_UNSUPPORTED',
  'PASSWORD_REQUIRED',
  'PASSWORD_WRONG',
]);

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ClientError('BAD_INPUT', `cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** A secret given as `env://NAME` or a file, never echoed. */
function readSecret(reference: string, what: string): string {
  if (reference.startsWith('env://')) {
    const value = process.env[reference.slice('env://'.length)];
    if (!value) throw new ClientError('BAD_INPUT', `${what} ${reference}: the variable is not set or empty`);
    return value;
  }
  return readText(reference, what);
}

/**
 * A scan report file, sent as its text so that the server digests the bytes the scanner wrote
 * (the summary's `reportDigest` then matches the file kept elsewhere). It must be JSON.
 */
function readReport(file: string): string {
  const text = readText(file, 'scan report');
  if (text.length > 8 * 1024 * 1024) throw new ClientError('BAD_INPUT', `scan report ${file} is larger than 8 MiB`);
  try {
    JSON.parse(text);
  } catch {
    throw new ClientError('BAD_INPUT', `scan report ${file} is not JSON (Trivy or Grype JSON, or SARIF)`);
  }
  return text;
}

function clientFor(a: Args): TrustClient {
  const options: TrustClientOptions = {};
  const server = a.string('server');
  if (server) options.server = server;
  const ca = a.string('tlscacert');
  if (ca) options.serverCa = readText(ca, 'CA file');
  const registryCa = a.string('registry-ca');
  if (registryCa) options.registryCa = readText(registryCa, 'CA file');
  const dir = a.string('trust-dir');
  if (dir) options.trustDir = dir;
  const insecure = a.strings('insecure-registry');
  if (insecure.length) options.insecureRegistries = insecure;
  const certs = a.strings('pin-cert');
  const pinCa = a.string('pin-ca');
  if (certs.length || pinCa || a.flag('no-tofu')) {
    options.pinning = {
      ...(certs.length ? { certs } : {}),
      ...(pinCa ? { ca: readText(pinCa, 'CA file') } : {}),
      ...(a.flag('no-tofu') ? { disableTofu: true } : {}),
    };
  }
  return new TrustClient(options);
}

/** Progress over `total` items on a terminal only. */
function progress(total: number): (done: number, what: string) => void {
  const line = progressLine();
  return (done, what) => line(done, total, what);
}

function print(a: Args, json: unknown, text: string): void {
  if (a.flag('json')) console.log(JSON.stringify(json, null, 2));
  else if (text) console.log(text);
}

async function run(command: keyof typeof SPECS, a: Args, client: TrustClient): Promise<number> {
  const p = a.positionals;
  switch (command) {
    case 'key generate': {
      const name = p[0]!;
      const rootFor = a.string('root');
      if (rootFor !== undefined) {
        if (a.string('type') !== undefined && a.string('type') !== 'ecdsa') throw new UsageError('root keys are ECDSA P-256', 'trust key generate');
        const file = path.join(a.string('dir') ?? '.', `${name}.crt`);
        const key = await client.generateRootKey(name, rootFor, file);
        print(
          a,
          { name, repository: rootFor, ...key, certificate: file },
          `Generated root key ${key.keyId} for ${rootFor}.\nIts certificate (root key ID ${key.certificateKeyId}) is in ${file}: give it to whoever stages the rotation.`,
        );
        return 0;
      }
      const type = a.string('type') ?? 'ecdsa';
      if (type !== 'ecdsa' && type !== 'ed25519') throw new UsageError(`--type must be ecdsa or ed25519, got ${JSON.stringify(type)}`, 'trust key generate');
      const key = await client.generateKey(name, type);
      const file = path.join(a.string('dir') ?? '.', `${name}.pub`);
      client.writePublicKey(file, publicKeyPem(key, name));
      print(
        a,
        { name, keyId: key.keyId, type, publicKey: file },
        `Generating key for ${name}...\nSuccessfully generated and loaded private key. Corresponding public key available: ${file}`,
      );
      return 0;
    }
    case 'key load': {
      const name = a.string('name');
      if (!name) throw new UsageError('--name NAME is needed', 'trust key load');
      const file = p[0]!;
      const key = await client.loadKey(readText(file, 'key file'), name, file);
      print(a, { name, keyId: key.keyId, file }, `Loading key from "${file}"...\nSuccessfully imported key from ${file}`);
      return 0;
    }
    case 'key rotate': {
      const role = p[1]!;
      if (role !== 'targets' && role !== 'snapshot' && role !== 'timestamp')
        throw new UsageError(`ROLE must be targets, snapshot or timestamp, got ${JSON.stringify(role)}`, 'trust key rotate');
      const result = await client.rotateKey(p[0]!, role, { serverManaged: a.flag('server-managed') });
      print(a, { repository: p[0], role, ...result }, `Successfully rotated ${role} key for repository ${p[0]}: new key ${result.keyId}`);
      return 0;
    }
    case 'signer add': {
      const files = a.strings('key');
      const [name, repo] = [p[0]!, p[1]!];
      if (a.flag('server-held')) {
        if (files.length > 0 || a.string('threshold') !== undefined) throw new UsageError('--server-held takes no --key or --threshold', 'trust signer add');
        const result = await client.addServerHeldSigner(name, repo);
        print(
          a,
          { signer: name, repository: repo, serverHeld: true, ...result },
          `${result.initialized ? `Initialized signed repository for ${repo}\n` : ''}Adding server-held signer "${name}" (key ${result.keyId}) to ${repo}...\nSuccessfully added signer: ${name} to ${repo}`,
        );
        return 0;
      }
      if (files.length === 0) throw new UsageError('--key FILE (or --server-held) is needed', 'trust signer add');
      const thresholdText = a.string('threshold');
      if (thresholdText !== undefined && !/^[1-9][0-9]{0,2}$/.test(thresholdText))
        throw new UsageError(`--threshold must be a number from 1, got ${JSON.stringify(thresholdText)}`, 'trust signer add');
      const result = await client.addSigner(
        name,
        repo,
        files.map((f) => readText(f, 'public key file')),
        thresholdText ? { threshold: Number(thresholdText) } : {},
      );
      print(
        a,
        { signer: name, repository: repo, ...result },
        `${result.initialized ? `Initialized signed repository for ${repo}\n` : ''}Adding signer "${name}" to ${repo}...\nSuccessfully added signer: ${name} to ${repo}`,
      );
      return 0;
    }
    case 'signer remove': {
      const [name, repo] = [p[0]!, p[1]!];
      await client.removeSigner(name, repo, { force: a.flag('force') });
      print(a, { signer: name, repository: repo, removed: true }, `Removing signer "${name}" from ${repo}...\nSuccessfully removed ${name} from ${repo}`);
      return 0;
    }
    case 'sign': {
      const digest = a.string('digest');
      const sizeText = a.string('size');
      if ((digest === undefined) !== (sizeText === undefined)) throw new UsageError('--digest and --size go together', 'trust sign');
      if (digest && p.length > 1) throw new UsageError('--digest and --size sign one tag only', 'trust sign');
      if (sizeText !== undefined && !/^\d{1,15}$/.test(sizeText))
        throw new UsageError(`--size must be a byte count, got ${JSON.stringify(sizeText)}`, 'trust sign');
      const signer = a.string('signer');
      const roles = a.strings('role');
      const remote = a.string('remote-signer');
      if (remote !== undefined) {
        if (p.length !== 1) throw new UsageError('--remote-signer signs one IMAGE:TAG per call', 'trust sign');
        if (signer || roles.length || a.flag('stage') || a.flag('local-snapshot'))
          throw new UsageError('--remote-signer takes no --signer, --role, --stage or --local-snapshot: the server decides', 'trust sign');
        const idTokenRef = a.string('id-token');
        const reportFile = a.string('scan-report');
        const idToken = idTokenRef !== undefined ? readSecret(idTokenRef, 'ID token').trim() : undefined;
        const answer = await client.remoteSign(p[0]!, remote, {
          ...(digest ? { target: { digest, length: Number(sizeText) } } : {}),
          ...(idToken ? { idToken } : {}),
          ...(reportFile !== undefined ? { scan: readReport(reportFile) } : {}),
        });
        print(
          a,
          answer,
          `Signed ${answer.gun}:${answer.tag} (${answer.digest}, ${answer.size} bytes) with server-held signer ${answer.signer} into ${answer.roles.map((r) => r.role).join(', ')}\nPublished ${answer.published.map((x) => `${x.role} v${x.version}`).join(', ')}`,
        );
        return 0;
      }
      if (a.flag('stage')) {
        if (roles.length !== 1 || p.length !== 1) throw new UsageError('--stage signs one IMAGE:TAG into one --role ROLE', 'trust sign');
        const staged = await client.stageSign(p[0]!, roles[0]!, digest ? { target: { digest, length: Number(sizeText) } } : {});
        print(
          a,
          staged,
          `Staged ${staged.role} version ${staged.version}: ${staged.gun}@${staged.id}\n${thresholdLines(staged).join('\n')}\nEach holder runs: signet trust stage sign ${staged.gun}@${staged.id}`,
        );
        return 0;
      }
      const cosignRef = a.string('cosign-key');
      const cosignFormat = a.string('cosign-format') ?? 'tag';
      if (cosignFormat !== 'tag' && cosignFormat !== 'bundle' && cosignFormat !== 'both')
        throw new UsageError(`--cosign-format must be tag, bundle or both, got ${JSON.stringify(cosignFormat)}`, 'trust sign');
      if (a.string('cosign-format') !== undefined && !cosignRef) throw new UsageError('--cosign-format goes with --cosign-key', 'trust sign');
      // The cosign key is opened first: a wrong password must stop the command before anything is published.
      const cosign = cosignRef ? await import('../cosign/index.js') : undefined;
      const cosignKey = cosign && cosignRef ? await cosign.loadSigningKey(cosignRef) : undefined;
      const tick = progress(p.length);
      const results = await client.signAll(
        p,
        {
          ...(digest ? { target: { digest, length: Number(sizeText) } } : {}),
          ...(signer ? { signer } : {}),
          ...(roles.length ? { roles } : {}),
          ...(a.flag('local-snapshot') ? { localSnapshot: true } : {}),
        },
        (done, image) => tick(done, image),
      );
      const cosignResults = new Map<string, import('../cosign/index.js').CosignSignResult>();
      if (cosign && cosignKey) {
        for (const r of results) {
          const key = `${r.name}@${r.digest}`;
          if (cosignResults.has(key)) continue;
          cosignResults.set(key, await cosign.signImageDigest(client.registry, parseImageReference(r.name), r.digest, cosignKey, { format: cosignFormat }));
        }
      }
      const withCosign = results.map((r) => {
        const c = cosignResults.get(`${r.name}@${r.digest}`);
        return c ? { ...r, cosign: c } : r;
      });
      print(
        a,
        withCosign,
        withCosign
          .map(
            (r) =>
              `${r.initialized ? `Finished initializing signed repository for ${r.name}:${r.tag}\n` : ''}Signing and pushing trust metadata for ${r.name}:${r.tag} (${r.digest}, ${r.length} bytes) into ${r.roles.join(', ')}\nSuccessfully signed ${r.name}:${r.tag}${'cosign' in r ? `\nPushed the Cosign signature of ${r.digest}${r.cosign.tag ? ` (${r.cosign.tag.tag})` : ''}${r.cosign.bundle ? ` (bundle ${r.cosign.bundle.manifestDigest})` : ''}` : ''}`,
          )
          .join('\n'),
      );
      return 0;
    }
    case 'revoke': {
      const removed = await client.revoke(p[0]!);
      print(
        a,
        removed,
        removed.length
          ? removed.map((r) => `Successfully deleted signature for ${p[0]!.replace(/:[^:/]+$/, '')}:${r.tag}`).join('\n')
          : `No signatures to revoke for ${p[0]}`,
      );
      return 0;
    }
    case 'inspect': {
      const tick = progress(p.length);
      if (a.flag('pretty')) {
        const texts: string[] = [];
        for (const [i, image] of p.entries()) {
          tick(i, image);
          texts.push(await client.inspect(image, true));
          tick(i + 1, image);
        }
        process.stdout.write(texts.join('\n\n'));
        return 0;
      }
      const repos = [];
      for (const [i, image] of p.entries()) {
        tick(i, image);
        repos.push(await client.inspect(image));
        tick(i + 1, image);
      }
      // docker prints its inspect JSON indented by four spaces.
      console.log(JSON.stringify(repos, null, 4));
      return 0;
    }
    case 'stage root-rotate': {
      const thresholdText = a.string('threshold');
      if (thresholdText !== undefined && !/^[1-9][0-9]{0,2}$/.test(thresholdText))
        throw new UsageError(`--threshold must be a number from 1, got ${JSON.stringify(thresholdText)}`, 'trust stage root-rotate');
      const expiresText = a.string('expires-in');
      if (expiresText !== undefined && !/^[1-9][0-9]{1,8}$/.test(expiresText))
        throw new UsageError(`--expires-in must be a number of seconds, got ${JSON.stringify(expiresText)}`, 'trust stage root-rotate');
      const newKeys = a.strings('new-key').map((f) => parsePublicKeyPem(readText(f, 'certificate file'), f));
      const result = await client.ceremony(p[0]!).stageRootRotation({
        newKeys,
        keepCurrent: a.flag('keep-current'),
        ...(thresholdText ? { threshold: Number(thresholdText) } : {}),
        ...(expiresText ? { expiresInSeconds: Number(expiresText) } : {}),
      });
      const text = result.published
        ? `Root version ${result.version} of ${p[0]} published: the keys here met every threshold.`
        : `Staged root version ${result.version} of ${p[0]}: ${result.staged!.gun}@${result.staged!.id}\n${thresholdLines(result.staged!).join('\n')}\nEach holder runs: signet trust stage sign ${result.staged!.gun}@${result.staged!.id}`;
      print(a, result, text);
      return 0;
    }
    case 'stage list': {
      const state = a.string('state');
      if (state !== undefined && !STAGE_STATES.has(state)) throw new UsageError(`--state must be one of ${[...STAGE_STATES].join(', ')}`, 'trust stage list');
      const staged = p[0] ? await client.ceremony(p[0]).list(state) : await client.listAllStaged(state);
      print(a, staged, staged.length ? staged.map(stagedSummary).join('\n') : 'No staged updates.');
      return 0;
    }
    case 'stage show': {
      const { ceremony, id } = client.staged(p[0]!, a.string('repo'));
      const shown = await ceremony.show(id);
      const s = shown.staged;
      print(
        a,
        shown,
        [
          stagedSummary(s),
          `  signed part sha256 ${s.signedSha256}; signed by ${s.signatures.map((x) => x.keyid).join(', ') || 'no one yet'}`,
          `  may be signed here by: ${shown.signableHere.join(', ') || 'none of the keys in this trust directory'}`,
          `Changes against the current ${s.role}${shown.currentVersion !== null ? ` (version ${shown.currentVersion})` : ' (none yet)'}:`,
          ...(shown.diff.length ? shown.diff.map((l) => `  ${l}`) : ['  (none)']),
        ].join('\n'),
      );
      return 0;
    }
    case 'stage sign': {
      const { ceremony, id } = client.staged(p[0]!, a.string('repo'));
      const result = await ceremony.sign(id);
      print(
        a,
        result,
        [
          `Signed ${result.staged.gun}@${id} with ${result.added.join(', ')}${result.alreadySigned.length ? ` (already signed by ${result.alreadySigned.join(', ')})` : ''}.`,
          result.published
            ? `Every threshold is met: published ${result.published.map((f) => `${f.role} version ${f.version}`).join(', ')}.`
            : stagedSummary(result.staged),
        ].join('\n'),
      );
      return 0;
    }
    case 'stage cancel': {
      const { ceremony, id } = client.staged(p[0]!, a.string('repo'));
      const staged = await ceremony.cancel(id);
      print(a, staged, `Cancelled ${staged.gun}@${staged.id}.`);
      return 0;
    }
    case 'verify': {
      const signers = a.strings('signer');
      const thresholdText = a.string('threshold');
      if (thresholdText !== undefined && (!/^\d+$/.test(thresholdText) || Number(thresholdText) < 1 || Number(thresholdText) > signers.length)) {
        throw new UsageError(
          `--threshold must be between 1 and the number of --signer names (${signers.length}), got ${JSON.stringify(thresholdText)}`,
          'verify',
        );
      }
      const v = await client.verify(p[0]!, { signers, ...(thresholdText ? { threshold: Number(thresholdText) } : {}) });
      print(a, { trusted: true, ...v }, `${v.name}:${v.tag} ${v.digest} signed by ${v.signers.join(', ')}`);
      return 0;
    }
  }
}

function resolve(argv: string[]): { command: keyof typeof SPECS; rest: string[] } | null {
  if (argv[0] === 'verify') return { command: 'verify', rest: argv.slice(1) };
  const [, first, second] = argv;
  if ((first === 'key' || first === 'signer' || first === 'stage') && second && !second.startsWith('-')) {
    const name = `${first} ${second}`;
    if (name in SPECS) return { command: name as keyof typeof SPECS, rest: argv.slice(3) };
    throw new UsageError(`unknown command ${JSON.stringify(name)}`, `trust ${first}`);
  }
  if (first && first in SPECS && first !== 'verify') return { command: first as keyof typeof SPECS, rest: argv.slice(2) };
  return null;
}

/** Runs `signet trust …` or `signet verify …`; returns the exit code. */
export async function runTrustCommand(argv: string[]): Promise<number> {
  const wantsJson = argv.includes('--json');
  let client: TrustClient | undefined;
  try {
    const found = resolve(argv);
    if (!found) {
      const first = argv[1];
      if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
        (first === undefined ? console.error : console.log)(TRUST_USAGE);
        return first === undefined ? 2 : 0;
      }
      if (first === 'key' || first === 'signer' || first === 'stage') throw new UsageError(`${first} needs a subcommand`, 'trust');
      throw new UsageError(`unknown command ${JSON.stringify(first)}`, 'trust');
    }
    const a = parseCommand(SPECS[found.command], found.rest);
    if (!a) return 0;
    client = clientFor(a);
    return await run(found.command, a, client);
  } catch (err) {
    const code = signetErrorCode(err) ?? 'INTERNAL';
    const message = err instanceof UsageError ? usageMessage(err) : `signet: ${err instanceof Error ? err.message : String(err)}`;
    if (wantsJson) console.log(JSON.stringify({ error: { code, message } }, null, 2));
    console.error(message);
    return MISTAKES.has(code) ? 2 : 1;
  } finally {
    client?.close();
  }
}
