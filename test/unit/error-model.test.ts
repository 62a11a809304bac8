/**
 * The error model: every Signet error carries a stable code, a request failure's code decides
 * notary's envelope through one table, and an unknown failure is nobody's guess (UNKNOWN).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_CODES, HttpError, NOTARY_ERRORS, toHttpError } from '../../src/http/errors.js';
import { MultipartError } from '../../src/http/multipart.js';
import { InvalidParametersError, InvalidRoleError, NoFilenameError, NotFoundError } from '../../src/service/errors.js';
import { KeyEncryptionKeyMismatchError } from '../../src/service/key-encryption-binding.js';
import { RekeyError } from '../../src/service/rekey-server-keys.js';
import { KeyEncryptionError } from '../../src/signing/key-encryption.js';
import { DataDirError, DatabaseUnavailableError } from '../../src/storage/database.js';
import { isConnectionFailure, StorageUnavailableError, storageError } from '../../src/storage/errors.js';
import { StoreLockedError } from '../../src/storage/store-lock.js';
import { ConfigError } from '../../src/config.js';
import { UsageError } from '../../src/cli/args.js';
import { TokenFormatError } from '../../src/auth/jws.js';
import { SourceError } from '../../src/import/source.js';
import { PrivateKeyError } from '../../src/import/private-key.js';
import { JweDecryptionError, JweError } from '../../src/import/jwe.js';
import { badHierarchy, badRoot, OldVersionError } from '../../src/tuf/notary/errors.js';
import { MalformedMetadataError } from '../../src/tuf/notary/metadata.js';
import { CanonicalJsonError } from '../../src/tuf/core/canonical-json.js';
import { TrustError } from '../../src/tuf/notary/trusted-set.js';
import { KeyError } from '../../src/tuf/core/keys.js';
import { CertificateError } from '../../src/tuf/core/certificates.js';
import { SignetError, signetErrorCode } from '../../src/tuf/core/signet-error.js';

/** One of every Signet error class, with the code it must keep. */
const EVERY_ERROR: Array<[SignetError, string]> = [
  [badRoot('bad root'), 'VALIDATION'],
  [new OldVersionError('old'), 'OLD_VERSION'],
  [new MalformedMetadataError('not json'), 'MALFORMED_METADATA'],
  [new CanonicalJsonError('not canonical'), 'CANONICAL_JSON'],
  [new TrustError('THRESHOLD', 'root', 'too few signatures'), 'THRESHOLD'],
  [new KeyError('bad key'), 'KEY_INVALID'],
  [new CertificateError('bad certificate'), 'CERTIFICATE_INVALID'],
  [new NotFoundError('none'), 'NOT_FOUND'],
  [new InvalidRoleError('targets/../x'), 'INVALID_ROLE'],
  [new NoFilenameError('empty role'), 'NO_FILENAME'],
  [new InvalidParametersError('records: too many'), 'INVALID_PARAMETERS'],
  [new MultipartError('MALFORMED_UPLOAD', 'bad body'), 'MALFORMED_UPLOAD'],
  [new MultipartError('NO_FILENAME', 'no filename'), 'NO_FILENAME'],
  [new MultipartError('TOO_MANY_PARTS', 'too many'), 'TOO_MANY_PARTS'],
  [new MultipartError('PART_TOO_LARGE', 'too large'), 'PART_TOO_LARGE'],
  [new StorageUnavailableError('connect ECONNREFUSED'), 'STORAGE_UNAVAILABLE'],
  [new DatabaseUnavailableError('cannot connect'), 'STORAGE_UNAVAILABLE'],
  [new DataDirError('not writable'), 'DATA_DIR_UNUSABLE'],
  [new StoreLockedError('locked'), 'STORE_LOCKED'],
  [new KeyEncryptionError('cannot decrypt'), 'KEY_ENCRYPTION'],
  [new KeyEncryptionKeyMismatchError('other kek'), 'KEK_MISMATCH'],
  [new RekeyError('refused'), 'REKEY_REFUSED'],
  [new ConfigError('bad setting'), 'CONFIG'],
  [new UsageError('bad flag', 'serve'), 'USAGE'],
  [new TokenFormatError('not a jws'), 'TOKEN_FORMAT'],
  [new SourceError('no source'), 'IMPORT_SOURCE'],
  [new PrivateKeyError('bad key'), 'IMPORT_PRIVATE_KEY'],
  [new JweError('bad jwe'), 'JWE'],
  [new JweDecryptionError('wrong passphrase'), 'JWE_DECRYPTION'],
];

test('every Signet error class is a SignetError with its stable code, name and message kept', () => {
  for (const [error, code] of EVERY_ERROR) {
    assert.ok(error instanceof SignetError, error.name);
    assert.ok(error instanceof Error, error.name);
    assert.equal(error.code, code, error.name);
    assert.equal(signetErrorCode(error), code);
    assert.notEqual(error.name, 'Error', `${error.constructor.name} names itself`);
  }
  assert.equal(new TrustError('EXPIRED', 'timestamp', 'expired').message, 'timestamp: expired');
  assert.equal(signetErrorCode(new Error('plain')), undefined);
});

test('a Signet error keeps its cause', () => {
  const cause = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
  const wrapped = storageError(cause) as StorageUnavailableError;
  assert.ok(wrapped instanceof StorageUnavailableError);
  assert.equal(wrapped.cause, cause);
  assert.equal(wrapped.message, 'read ECONNRESET', 'health reports quote the driver message');
});

test('every code in the table maps to a notary error code', () => {
  for (const [code, mapping] of Object.entries(NOTARY_ERRORS)) {
    assert.ok(Object.hasOwn(ERROR_CODES, mapping.notary), `${code} → ${mapping.notary}`);
  }
});

test('request failures map to notary envelopes exactly as before', () => {
  const cases: Array<[unknown, string, number, unknown]> = [
    [new NotFoundError('no repository x'), 'METADATA_NOT_FOUND', 404, undefined],
    [badRoot('root is bad'), 'INVALID_UPDATE', 400, { Name: 'ErrBadRoot', Error: { Msg: 'root is bad' } }],
    [badHierarchy('targets', 'no targets'), 'INVALID_UPDATE', 400, { Name: 'ErrBadHierarchy', Error: { Missing: 'targets', Msg: 'no targets' } }],
    [new OldVersionError('a version was stored concurrently'), 'VERSION', 400, 'a version was stored concurrently'],
    [new MalformedMetadataError('bad json'), 'MALFORMED_JSON', 400, 'bad json'],
    [new InvalidRoleError('foo'), 'INVALID_ROLE', 400, 'foo'],
    [new NoFilenameError('a part has an empty role name'), 'NO_FILENAME', 400, 'a part has an empty role name'],
    [new InvalidParametersError('records: 0'), 'INVALID_PARAMETERS', 400, 'records: 0'],
    [new MultipartError('MALFORMED_UPLOAD', 'm'), 'MALFORMED_UPLOAD', 400, 'm'],
    [new MultipartError('NO_FILENAME', 'n'), 'NO_FILENAME', 400, 'n'],
    [new MultipartError('TOO_MANY_PARTS', 't'), 'MALFORMED_UPLOAD', 400, 't'],
    [new MultipartError('PART_TOO_LARGE', 'p'), 'TOO_LARGE', 413, 'p'],
    [new StorageUnavailableError('Connection terminated'), 'UNAVAILABLE', 503, 'the database is unreachable'],
    [new HttpError('INVALID_GUN', 'why'), 'INVALID_GUN', 400, 'why'],
  ];
  for (const [error, code, status, detail] of cases) {
    const mapped = toHttpError(error);
    assert.ok(mapped, String(error));
    assert.equal(mapped.code, code, String(error));
    assert.equal(mapped.status, status, String(error));
    assert.deepEqual(mapped.detail, detail, String(error));
  }
});

test('anything else is unexpected (UNKNOWN, or UPDATING on an update): no code, or a code no request should fail with', () => {
  const codes = new Set(Object.keys(NOTARY_ERRORS));
  for (const [error, code] of EVERY_ERROR) {
    if (!codes.has(code)) assert.equal(toHttpError(error), null, error.name);
  }
  assert.equal(toHttpError(new Error('bug')), null);
  assert.equal(toHttpError(new TypeError('x is undefined')), null);
  assert.equal(toHttpError('a string'), null);
  assert.equal(toHttpError(null), null);
  // A driver's raw connection error is storage's to translate; http no longer sniffs pg codes.
  assert.equal(toHttpError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), null);
  // A code that merely looks like an object key is not in the table.
  assert.equal(toHttpError(Object.assign(new KeyError('x'), { code: 'constructor' })), null);
});

test('storage translates connection failures only; other driver errors pass through', () => {
  for (const e of [
    Object.assign(new Error('x'), { code: 'ECONNREFUSED' }),
    Object.assign(new Error('x'), { code: '08006' }),
    Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' }),
    Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
    new Error('timeout exceeded when trying to connect'),
    new Error('Connection terminated unexpectedly'),
  ]) {
    assert.ok(isConnectionFailure(e), e.message);
    assert.ok(storageError(e) instanceof StorageUnavailableError, e.message);
  }
  const unique = Object.assign(new Error('duplicate key value'), { code: '23505' });
  assert.equal(storageError(unique), unique, 'a unique violation is the caller’s to handle');
  const own = new NotFoundError('x');
  assert.equal(storageError(own), own);
});
