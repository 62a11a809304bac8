/**
 * Docker image references: `[host[:port]/]path[:tag][@digest]`, with docker's grammar and its
 * normalisation (distribution/reference's ParseNormalizedNamed):
 *
 * - the first `/`-separated component is a registry host when it contains `.` or `:`, is
 *   `localhost`, or has upper-case letters (path components never do); otherwise the registry
 *   is Docker Hub, `docker.io`, and a one-component path gets the `library/` prefix;
 * - `index.docker.io` is the legacy name of `docker.io`;
 * - path components are lower-case alphanumerics joined by `.`, `_`, `__` or runs of `-`;
 *   upper-case letters in the path are an error, not something to fold;
 * - a tag is `[\w][\w.-]{0,127}`; a digest is `sha256:` and 64 lower-case hex digits;
 * - a bare 64-hex string is an image ID, not a name.
 *
 * `name` (registry + repository) is the notary GUN under which docker keeps an image's trust data.
 */
import { SignetError } from '../tuf/core/signet-error.js';

export class ReferenceError extends SignetError {
  override name = 'ReferenceError';
  readonly code = 'BAD_REFERENCE';
  constructor(
    readonly reference: string,
    readonly reason: string,
  ) {
    super(`invalid image reference ${JSON.stringify(reference.length > 300 ? `${reference.slice(0, 300)}…` : reference)}: ${reason}`);
  }
}

export interface ImageReference {
  /** Registry host as written (with its port), `docker.io` for Docker Hub. */
  registry: string;
  /** Path inside the registry, e.g. `library/ubuntu` or `team/app`. */
  repository: string;
  tag?: string;
  /** `sha256:<64 hex>`. With both a tag and a digest, the digest decides what is pulled (as docker does). */
  digest?: string;
  /** `registry/repository`, e.g. `registry.example.com/team/app`: the notary GUN. */
  name: string;
  /** The name as docker shows it: Docker Hub's domain and `library/` dropped (`ubuntu`, `alice/app`). */
  familiar: string;
}

export const DOCKER_HUB = 'docker.io';
/** Where Docker Hub's registry API actually answers. */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';
/** The tag docker assumes when a reference names neither a tag nor a digest. */
export const DEFAULT_TAG = 'latest';
const LEGACY_DOCKER_HUB = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';
const MAX_PATH_LENGTH = 255;

// The grammar, built from its parts the way the distribution spec states it.
const ALNUM = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|-+)';
const PATH_COMPONENT = `${ALNUM}(?:${SEPARATOR}${ALNUM})*`;
const PATH = `${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const DOMAIN_LABEL = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const HOST = `(?:${DOMAIN_LABEL}(?:\\.${DOMAIN_LABEL})*|\\[[a-fA-F0-9:]+\\])`;
const DOMAIN = `${HOST}(?::[0-9]+)?`;
const TAG = '[\\w][\\w.-]{0,127}';
/** Any digest the grammar admits; only sha256 is then accepted. */
const ANY_DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';

const REFERENCE_RE = new RegExp(`^(${DOMAIN})/(${PATH})(?::(${TAG}))?(?:@(${ANY_DIGEST}))?$`);
const IMAGE_ID_RE = /^[a-f0-9]{64}$/;
const SHA256_RE = /^sha256:[a-f0-9]{64}$/;
const TAG_RE = new RegExp(`^${TAG}$`);
const DOMAIN_RE = new RegExp(`^${DOMAIN}$`);
const PATH_RE = new RegExp(`^${PATH}$`);

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

export function isSha256Digest(digest: string): boolean {
  return SHA256_RE.test(digest);
}

/** Registry host and the rest, by docker's rule for telling a host from a first path component. */
function splitRegistry(text: string): [string, string] {
  const slash = text.indexOf('/');
  if (slash < 0) return [DOCKER_HUB, OFFICIAL_PREFIX + text];
  const first = text.slice(0, slash);
  const rest = text.slice(slash + 1);
  let registry: string;
  let remainder: string;
  if (first === 'localhost' || /[.:]/.test(first) || first.toLowerCase() !== first) {
    [registry, remainder] = [first === LEGACY_DOCKER_HUB ? DOCKER_HUB : first, rest];
  } else {
    [registry, remainder] = [DOCKER_HUB, text];
  }
  if (registry === DOCKER_HUB && !remainder.includes('/')) remainder = OFFICIAL_PREFIX + remainder;
  return [registry, remainder];
}

function familiarName(registry: string, repository: string): string {
  if (registry !== DOCKER_HUB) return `${registry}/${repository}`;
  if (repository.startsWith(OFFICIAL_PREFIX) && !repository.slice(OFFICIAL_PREFIX.length).includes('/')) return repository.slice(OFFICIAL_PREFIX.length);
  return repository;
}

export function parseImageReference(text: string): ImageReference {
  const fail = (reason: string): never => {
    throw new ReferenceError(text, reason);
  };
  if (text === '') fail('empty reference');
  if (IMAGE_ID_RE.test(text)) fail('a 64-character hexadecimal string is an image ID, not a repository name');
  if (/\s/.test(text)) fail('contains white space');
  const [registry, remainder] = splitRegistry(text);
  const pathPart = remainder.split(/[:@]/, 1)[0]!;
  if (pathPart.toLowerCase() !== pathPart) fail(`repository name ${JSON.stringify(pathPart)} must be lower-case`);
  const m = REFERENCE_RE.exec(`${registry}/${remainder}`);
  if (!m) {
    if (!DOMAIN_RE.test(registry)) fail(`${JSON.stringify(registry)} is not a registry host`);
    if (!PATH_RE.test(pathPart)) fail(`repository name ${JSON.stringify(pathPart)}: components are lower-case letters and digits separated by ., _, __ or -`);
    const tagAt = remainder.indexOf(':');
    const at = remainder.indexOf('@');
    const tag = tagAt >= 0 ? remainder.slice(tagAt + 1, at > tagAt ? at : undefined) : undefined;
    if (tag !== undefined && !TAG_RE.test(tag))
      fail(`tag ${JSON.stringify(tag)} is not valid (letters, digits, _, . and -, at most 128, not starting with . or -)`);
    if (at >= 0) fail(`digest ${JSON.stringify(remainder.slice(at + 1))} is not valid (sha256: and 64 hex digits)`);
    fail('invalid reference format');
  }
  const [, , repository, tag, digest] = m!;
  if (repository!.length > MAX_PATH_LENGTH) fail(`repository name longer than ${MAX_PATH_LENGTH} characters`);
  if (digest !== undefined && !SHA256_RE.test(digest)) {
    fail(
      digest.startsWith('sha256:') ? 'sha256 digest must be 64 lower-case hex digits' : `unsupported digest algorithm ${JSON.stringify(digest.split(':')[0])}`,
    );
  }
  return {
    registry,
    repository: repository!,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
    name: `${registry}/${repository}`,
    familiar: familiarName(registry, repository!),
  };
}

/** `name[:tag][@digest]`, the full form (`familiar: true` for docker's short form). */
export function formatImageReference(ref: ImageReference, options: { familiar?: boolean } = {}): string {
  return `${options.familiar ? ref.familiar : ref.name}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** What to ask the registry's manifest endpoint for: the digest, else the tag, else `latest`. */
export function manifestReference(ref: Pick<ImageReference, 'tag' | 'digest'>): string {
  return ref.digest ?? ref.tag ?? DEFAULT_TAG;
}

/** The host that serves the registry API for a reference's registry (Docker Hub's differs from its name). */
export function registryApiHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API_HOST : registry;
}
