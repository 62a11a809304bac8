/**
 * Cosign's names on the registry, from cosign's code (pkg/types/media.go, pkg/oci/static,
 * pkg/oci/remote/write.go) and its specs (SIGNATURE_SPEC.md, BUNDLE_SPEC.md).
 */
/** The layer of a tag-format signature: the simple-signing payload. */
export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
/** The base64 signature over the layer's bytes. */
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
export const CERTIFICATE_ANNOTATION = 'dev.sigstore.cosign/certificate';
export const CHAIN_ANNOTATION = 'dev.sigstore.cosign/chain';
/** A Rekor bundle (signed entry timestamp) of a tag-format signature. */
export const REKOR_BUNDLE_ANNOTATION = 'dev.sigstore.cosign/bundle';
export const OCI_CONFIG_MEDIA_TYPE = 'application/vnd.oci.image.config.v1+json';
export const OCI_EMPTY_MEDIA_TYPE = 'application/vnd.oci.empty.v1+json';
/** The manifest's artifactType and the layer's media type of a bundle-format signature (cosign 3). */
export const BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
export const BUNDLE_CONTENT_ANNOTATION = 'dev.sigstore.bundle.content';
export const BUNDLE_PREDICATE_TYPE_ANNOTATION = 'dev.sigstore.bundle.predicateType';
export const CREATED_ANNOTATION = 'org.opencontainers.image.created';
/** The predicate type of cosign 3's image signatures (pkg/types/predicate.go). */
export const COSIGN_SIGN_PREDICATE_TYPE = 'https://sigstore.dev/cosign/sign/v1';
export const IN_TOTO_STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
/** cosign's reader stops at this many layers in one signature manifest (pkg/oci/remote/signatures.go). */
export const MAX_SIGNATURE_LAYERS = 1000;

/** The tag-format discovery tag for an image digest: `sha256-<hex>.sig`. */
export function signatureTag(digest: string): string {
  return `${digest.replace(':', '-')}.sig`;
}
