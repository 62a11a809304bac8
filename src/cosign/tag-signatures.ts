/**
 * Cosign's tag format (cosign ≤ 2's default, still read by cosign 3): the signatures of an image
 * digest live in one OCI manifest tagged `sha256-<hex>.sig` in the image's repository, one layer
 * per signature; the layer is the simple-signing payload and its `dev.cosignproject.cosign/signature`
 * annotation the base64 signature over it.
 *
 * Writing appends a layer to the manifest that is there (so signatures by other keys stay), and
 * writes nothing when the same payload with the same signature is there already. Like cosign's,
 * the read-append-write is not atomic against another writer of the same digest at the same moment.
 */
import { createHash } from 'node:crypto';
import { MEDIA_TYPES, RegistryError, type RegistryClient, type RepositoryRef } from '../registry/index.js';
import { CosignError } from './errors.js';
import { MAX_SIGNATURE_LAYERS, OCI_CONFIG_MEDIA_TYPE, SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE, signatureTag } from './formats.js';

/** Largest payload read from a signature layer. Cosign allows 128 MiB; real payloads are a few hundred bytes. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;

export interface TagSignature {
  payload: Buffer;
  signature: Buffer;
  /** The annotation as stored (base64). */
  signatureBase64: string;
  layerDigest: string;
  annotations: Record<string, string>;
}

export interface TagSignatures {
  /** The `.sig` manifest's digest, when there is one. */
  manifestDigest?: string;
  signatures: TagSignature[];
  /** Layers that are not signatures (say why; the rest still counts). */
  problems: string[];
}

interface LayerDescriptor {
  mediaType: string;
  size: number;
  digest: string;
  annotations?: Record<string, string>;
}

const GO_ZERO_TIME = '0001-01-01T00:00:00Z';
const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

function isBase64(text: string): boolean {
  return text.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(text);
}

/** The layers of a `.sig` manifest, or BAD_SIGNATURE_DATA naming what is wrong with it. */
function signatureLayers(bytes: Buffer, where: string): LayerDescriptor[] {
  let manifest: { layers?: unknown };
  try {
    manifest = JSON.parse(bytes.toString('utf8')) as { layers?: unknown };
  } catch {
    throw new CosignError('BAD_SIGNATURE_DATA', `${where}: the signature manifest is not JSON`);
  }
  const layers = manifest?.layers;
  if (!Array.isArray(layers)) throw new CosignError('BAD_SIGNATURE_DATA', `${where}: the signature manifest has no layers`);
  if (layers.length > MAX_SIGNATURE_LAYERS)
    throw new CosignError('BAD_SIGNATURE_DATA', `${where}: ${layers.length} layers, more than cosign reads (${MAX_SIGNATURE_LAYERS})`);
  return layers.map((l, i) => {
    const d = l as Partial<LayerDescriptor> | null;
    if (typeof d !== 'object' || d === null || typeof d.digest !== 'string' || typeof d.mediaType !== 'string' || typeof d.size !== 'number') {
      throw new CosignError('BAD_SIGNATURE_DATA', `${where}: layer ${i} is not a descriptor`);
    }
    const annotations =
      typeof d.annotations === 'object' && d.annotations !== null
        ? Object.fromEntries(Object.entries(d.annotations).filter((e): e is [string, string] => typeof e[1] === 'string'))
        : {};
    return { mediaType: d.mediaType, size: d.size, digest: d.digest, annotations };
  });
}

async function existingManifest(client: RegistryClient, repo: RepositoryRef, tag: string) {
  try {
    return await client.getManifest(client.at(repo, tag));
  } catch (error) {
    if (error instanceof RegistryError && error.code === 'NOT_FOUND') return undefined;
    if (error instanceof RegistryError && error.code === 'BAD_RESPONSE') {
      throw new CosignError('BAD_SIGNATURE_DATA', `${repo.registry}/${repo.repository}:${tag}: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

/** The tag-format signatures of `digest` in `repo`: none when there is no `.sig` tag. */
export async function readTagSignatures(
  client: RegistryClient,
  repo: RepositoryRef,
  digest: string,
  options: { maxPayloadBytes?: number } = {},
): Promise<TagSignatures> {
  const tag = signatureTag(digest);
  const where = `${repo.registry}/${repo.repository}:${tag}`;
  const manifest = await existingManifest(client, repo, tag);
  if (!manifest) return { signatures: [], problems: [] };
  const layers = signatureLayers(manifest.bytes, where);
  const max = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  const problems: string[] = [];
  const read = await Promise.all(
    layers.map(async (layer, i): Promise<TagSignature | undefined> => {
      const encoded = layer.annotations?.[SIGNATURE_ANNOTATION];
      if (layer.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE)
        return void problems.push(`layer ${i}: media type ${JSON.stringify(layer.mediaType.slice(0, 100))}, not a signature`);
      if (encoded === undefined) return void problems.push(`layer ${i}: no ${SIGNATURE_ANNOTATION} annotation`);
      if (!isBase64(encoded)) return void problems.push(`layer ${i}: the signature annotation is not base64`);
      if (layer.size > max) return void problems.push(`layer ${i}: payload of ${layer.size} bytes, more than ${max}`);
      let payload: Buffer;
      try {
        payload = await client.getBlob(repo, layer.digest, { maxBytes: max });
      } catch (error) {
        // A missing or corrupt payload blob spoils that signature only; an unreachable registry spoils all.
        if (error instanceof RegistryError && (error.code === 'NOT_FOUND' || error.code === 'DIGEST_MISMATCH' || error.code === 'BAD_REQUEST')) {
          return void problems.push(`layer ${i}: ${error.message}`);
        }
        throw error;
      }
      if (payload.length !== layer.size) return void problems.push(`layer ${i}: the payload is ${payload.length} bytes, the descriptor says ${layer.size}`);
      return { payload, signature: Buffer.from(encoded, 'base64'), signatureBase64: encoded, layerDigest: layer.digest, annotations: layer.annotations ?? {} };
    }),
  );
  return { manifestDigest: manifest.digest, signatures: read.filter((s): s is TagSignature => s !== undefined), problems };
}

/** go-containerregistry's config file for an image of these layers, as cosign's signature images carry. */
function signatureConfig(layerDigests: string[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: '',
      created: GO_ZERO_TIME,
      history: layerDigests.map(() => ({ created: GO_ZERO_TIME })),
      os: '',
      rootfs: { type: 'layers', diff_ids: layerDigests },
      config: {},
    }),
  );
}

export interface WrittenTagSignature {
  /** False when this exact signature was there already. */
  written: boolean;
  tag: string;
  manifestDigest: string;
}

/**
 * Add a signature (payload + base64 signature, and any extra layer annotations such as a
 * certificate) to the `.sig` manifest of `digest`.
 */
export async function writeTagSignature(
  client: RegistryClient,
  repo: RepositoryRef,
  digest: string,
  signature: { payload: Buffer; signatureBase64: string; annotations?: Record<string, string> },
): Promise<WrittenTagSignature> {
  const tag = signatureTag(digest);
  const where = `${repo.registry}/${repo.repository}:${tag}`;
  const existing = await existingManifest(client, repo, tag);
  const layers = existing ? signatureLayers(existing.bytes, where) : [];
  const payloadDigest = sha256(signature.payload);
  if (existing && layers.some((l) => l.digest === payloadDigest && l.annotations?.[SIGNATURE_ANNOTATION] === signature.signatureBase64)) {
    return { written: false, tag, manifestDigest: existing.digest };
  }
  if (layers.length >= MAX_SIGNATURE_LAYERS)
    throw new CosignError('BAD_SIGNATURE_DATA', `${where}: already ${layers.length} signatures, the most cosign reads`);
  await client.pushBlob(repo, signature.payload);
  const layer: LayerDescriptor = {
    mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
    size: signature.payload.length,
    digest: payloadDigest,
    annotations: { ...signature.annotations, [SIGNATURE_ANNOTATION]: signature.signatureBase64 },
  };
  const all = [...layers, layer];
  const config = signatureConfig(all.map((l) => l.digest));
  const configDescriptor = await client.pushBlob(repo, config);
  // go-containerregistry's field order: schemaVersion, mediaType, config, layers; descriptors mediaType, size, digest, annotations.
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: OCI_CONFIG_MEDIA_TYPE, size: configDescriptor.size, digest: configDescriptor.digest },
    layers: all.map((l) => ({
      mediaType: l.mediaType,
      size: l.size,
      digest: l.digest,
      ...(l.annotations && Object.keys(l.annotations).length ? { annotations: l.annotations } : {}),
    })),
  };
  const stored = await client.putManifest(repo, tag, Buffer.from(JSON.stringify(manifest)), MEDIA_TYPES.ociManifest);
  return { written: true, tag, manifestDigest: stored.digest };
}
