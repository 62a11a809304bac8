/**
 * Signer keys in a PKCS#11 token (SIGNET_PKCS11_MODULE): the ECDSA P-256 key pair is generated
 * inside the token as token objects (CKA_TOKEN), the private one sensitive and not extractable,
 * and every signature is made there with C_Sign (CKM_ECDSA over the SHA-256 digest). Signet
 * keeps only the public key and the objects' CKA_ID; the PIN is read once, at start, and never
 * logged. The binding (the optional dependency `pkcs11js`, a native addon) is loaded only when a
 * module is configured.
 */
import { createHash, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SignetError } from '../tuf/core/signet-error.js';

export type Pkcs11ErrorCode =
  /** The token cannot be opened as configured: module, token label or PIN (a startup error). */
  | 'PKCS11_CONFIG'
  /** The token refused an operation, or a key it should hold is missing. */
  | 'PKCS11_FAILED';

export class Pkcs11Error extends SignetError {
  override name = 'Pkcs11Error';
  constructor(
    readonly code: Pkcs11ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface Pkcs11Settings {
  /** Path of the PKCS#11 module (.so). */
  module: string;
  /** Label of the token to use. */
  tokenLabel: string;
  /** File holding the user PIN (one line). */
  pinFile: string;
}

type Handle = Buffer;
interface Attribute {
  type: number;
  value?: number | boolean | string | Buffer;
}
/** The part of pkcs11js's PKCS11 class used here. */
interface Pkcs11Api {
  load(path: string): void;
  C_Initialize(): void;
  C_Finalize(): void;
  C_GetSlotList(tokenPresent?: boolean): Handle[];
  C_GetTokenInfo(slot: Handle): { label: string };
  C_OpenSession(slot: Handle, flags: number): Handle;
  C_CloseSession(session: Handle): void;
  C_Login(session: Handle, userType: number, pin?: string): void;
  C_GenerateKeyPair(
    session: Handle,
    mechanism: { mechanism: number },
    publicTemplate: Attribute[],
    privateTemplate: Attribute[],
  ): { publicKey: Handle; privateKey: Handle };
  C_SetAttributeValue(session: Handle, object: Handle, template: Attribute[]): void;
  C_GetAttributeValue(session: Handle, object: Handle, template: Attribute[]): Attribute[];
  C_FindObjectsInit(session: Handle, template: Attribute[]): void;
  C_FindObjects(session: Handle, maxObjectCount: number): Handle[];
  C_FindObjectsFinal(session: Handle): void;
  C_DestroyObject(session: Handle, object: Handle): void;
  C_SignInit(session: Handle, mechanism: { mechanism: number }, key: Handle): void;
  C_Sign(session: Handle, data: Buffer, out: Buffer): Buffer;
}
type Pkcs11Module = Record<string, number> & { PKCS11: new () => Pkcs11Api };

/** DER of the named curve P-256 (OID 1.2.840.10045.3.1.7), as CKA_EC_PARAMS. */
const P256_PARAMS = Buffer.from('06082a8648ce3d030107', 'hex');

/** One loaded module per path and process: C_Initialize may be called once. */
const loaded = new Map<string, { api: Pkcs11Api; consts: Pkcs11Module; users: number }>();

function oneLine(e: unknown): string {
  return ((e as Error)?.message ?? String(e)).split('\n')[0]!.slice(0, 300);
}

async function loadModule(path: string): Promise<{ api: Pkcs11Api; consts: Pkcs11Module; users: number }> {
  const known = loaded.get(path);
  if (known) {
    known.users++;
    return known;
  }
  let consts: Pkcs11Module;
  try {
    const imported = (await import('pkcs11js')) as unknown as { default?: Pkcs11Module } & Pkcs11Module;
    consts = imported.default ?? imported;
  } catch (e) {
    throw new Pkcs11Error(
      'PKCS11_CONFIG',
      `SIGNET_PKCS11_MODULE is set but the PKCS#11 binding (the optional package pkcs11js) cannot be loaded: ${oneLine(e)}`,
      { cause: e },
    );
  }
  const api = new consts.PKCS11();
  try {
    api.load(path);
  } catch (e) {
    throw new Pkcs11Error('PKCS11_CONFIG', `SIGNET_PKCS11_MODULE ${path} cannot be loaded as a PKCS#11 module: ${oneLine(e)}`, { cause: e });
  }
  try {
    api.C_Initialize();
  } catch (e) {
    if (oneLine(e) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') {
      throw new Pkcs11Error('PKCS11_CONFIG', `SIGNET_PKCS11_MODULE ${path}: C_Initialize failed: ${oneLine(e)}`, { cause: e });
    }
  }
  const entry = { api, consts, users: 1 };
  loaded.set(path, entry);
  return entry;
}

/** A DER ECDSA-Sig-Value from a raw r‖s signature (what X.509 certificates carry). */
export function ecdsaRawToDer(raw: Buffer): Buffer {
  const half = raw.length / 2;
  const int = (b: Buffer) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    const v = b.subarray(i);
    const body = v[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v;
    return Buffer.concat([Buffer.from([0x02, body.length]), body]);
  };
  const seq = Buffer.concat([int(raw.subarray(0, half)), int(raw.subarray(half))]);
  return Buffer.concat([Buffer.from([0x30, seq.length]), seq]);
}

/** The uncompressed point from CKA_EC_POINT (a DER OCTET STRING around it, or the point itself). */
function ecPoint(value: Buffer): Buffer {
  if (value.length === 67 && value[0] === 0x04 && value[1] === 0x41 && value[2] === 0x04) return value.subarray(2);
  if (value.length === 65 && value[0] === 0x04) return value;
  throw new Pkcs11Error('PKCS11_FAILED', `the token returned an EC point of ${value.length} bytes, not a P-256 point`);
}

/** What the token says of a key's private object. */
export interface TokenKeyAttributes {
  token: boolean;
  sensitive: boolean;
  extractable: boolean;
  label: string;
}

/** A logged-in session with one token. Calls are synchronous, so one session serves the process. */
export class Pkcs11Token {
  private readonly handles = new Map<string, Handle>();
  private closed = false;

  private constructor(
    private readonly api: Pkcs11Api,
    private readonly c: Pkcs11Module,
    private readonly session: Handle,
    private readonly modulePath: string,
    readonly tokenLabel: string,
  ) {}

  /** Load the module, find the token by label, log in with the PIN from the file. Throws PKCS11_CONFIG with one line. */
  static async open(settings: Pkcs11Settings): Promise<Pkcs11Token> {
    let pin: string;
    try {
      pin = readFileSync(settings.pinFile, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new Pkcs11Error('PKCS11_CONFIG', `SIGNET_PKCS11_PIN_FILE ${settings.pinFile} cannot be read: ${(e as NodeJS.ErrnoException).code ?? oneLine(e)}`);
    }
    if (pin === '') throw new Pkcs11Error('PKCS11_CONFIG', `SIGNET_PKCS11_PIN_FILE ${settings.pinFile} is empty`);
    const mod = await loadModule(settings.module);
    const { api, consts: c } = mod;
    let session: Handle | undefined;
    try {
      const slots = api.C_GetSlotList(true);
      const labels = slots.map((s) => api.C_GetTokenInfo(s).label.trim());
      const index = labels.indexOf(settings.tokenLabel);
      if (index < 0) {
        throw new Pkcs11Error(
          'PKCS11_CONFIG',
          `SIGNET_PKCS11_TOKEN_LABEL: no token labelled ${JSON.stringify(settings.tokenLabel)} in ${settings.module} (initialised tokens: ${
            labels
              .filter(Boolean)
              .map((l) => JSON.stringify(l))
              .join(', ') || 'none'
          })`,
        );
      }
      session = api.C_OpenSession(slots[index]!, c.CKF_SERIAL_SESSION! | c.CKF_RW_SESSION!);
      try {
        api.C_Login(session, c.CKU_USER!, pin);
      } catch (e) {
        const why = oneLine(e);
        if (why !== 'CKR_USER_ALREADY_LOGGED_IN') {
          throw new Pkcs11Error('PKCS11_CONFIG', `SIGNET_PKCS11_PIN_FILE: the token ${JSON.stringify(settings.tokenLabel)} refused the PIN (${why})`);
        }
      }
      return new Pkcs11Token(api, c, session, settings.module, settings.tokenLabel);
    } catch (e) {
      if (session) {
        try {
          api.C_CloseSession(session);
        } catch {
          // closing what failed
        }
      }
      release(settings.module);
      if (e instanceof Pkcs11Error) throw e;
      throw new Pkcs11Error('PKCS11_CONFIG', `SIGNET_PKCS11_MODULE ${settings.module}: ${oneLine(e)}`, { cause: e });
    }
  }

  private call<T>(what: string, work: () => T): T {
    if (this.closed) throw new Pkcs11Error('PKCS11_FAILED', 'the PKCS#11 session is closed');
    try {
      return work();
    } catch (e) {
      if (e instanceof Pkcs11Error) throw e;
      throw new Pkcs11Error('PKCS11_FAILED', `PKCS#11 ${what} failed: ${oneLine(e)}`, { cause: e });
    }
  }

  /**
   * A new P-256 key pair on the token, labelled `label`, with a temporary CKA_ID; returns its
   * public key and that ID. `identify` then gives the objects their final ID.
   */
  generateKeyPair(label: string): { publicKey: KeyObject; id: string } {
    const c = this.c;
    const id = randomBytes(16);
    const common = [
      { type: c.CKA_TOKEN!, value: true },
      { type: c.CKA_LABEL!, value: label },
      { type: c.CKA_ID!, value: id },
    ];
    const pair = this.call('C_GenerateKeyPair', () =>
      this.api.C_GenerateKeyPair(
        this.session,
        { mechanism: c.CKM_EC_KEY_PAIR_GEN! },
        [...common, { type: c.CKA_KEY_TYPE!, value: c.CKK_EC! }, { type: c.CKA_EC_PARAMS!, value: P256_PARAMS }, { type: c.CKA_VERIFY!, value: true }],
        [
          ...common,
          { type: c.CKA_KEY_TYPE!, value: c.CKK_EC! },
          { type: c.CKA_PRIVATE!, value: true },
          { type: c.CKA_SENSITIVE!, value: true },
          { type: c.CKA_EXTRACTABLE!, value: false },
          { type: c.CKA_SIGN!, value: true },
        ],
      ),
    );
    const [point] = this.call('C_GetAttributeValue', () => this.api.C_GetAttributeValue(this.session, pair.publicKey, [{ type: c.CKA_EC_POINT! }]));
    const xy = ecPoint(point!.value as Buffer);
    const publicKey = createPublicKey({
      key: { kty: 'EC', crv: 'P-256', x: xy.subarray(1, 33).toString('base64url'), y: xy.subarray(33).toString('base64url') },
      format: 'jwk',
    });
    this.handles.set(id.toString('hex'), pair.privateKey);
    return { publicKey, id: id.toString('hex') };
  }

  /** Give the objects with CKA_ID `from` the CKA_ID `to` (hex) and the label `label`. */
  identify(from: string, to: string, label: string): void {
    const objects = this.objects(from);
    for (const o of objects) {
      this.call('C_SetAttributeValue', () =>
        this.api.C_SetAttributeValue(this.session, o, [
          { type: this.c.CKA_ID!, value: Buffer.from(to, 'hex') },
          { type: this.c.CKA_LABEL!, value: label },
        ]),
      );
    }
    const handle = this.handles.get(from);
    this.handles.delete(from);
    if (handle) this.handles.set(to, handle);
  }

  private objects(id: string, cls?: number): Handle[] {
    const template: Attribute[] = [{ type: this.c.CKA_ID!, value: Buffer.from(id, 'hex') }];
    if (cls !== undefined) template.push({ type: this.c.CKA_CLASS!, value: cls });
    return this.call('C_FindObjects', () => {
      this.api.C_FindObjectsInit(this.session, template);
      try {
        return this.api.C_FindObjects(this.session, 16);
      } finally {
        this.api.C_FindObjectsFinal(this.session);
      }
    });
  }

  private privateKey(id: string): Handle {
    let handle = this.handles.get(id);
    if (!handle) {
      handle = this.objects(id, this.c.CKO_PRIVATE_KEY!)[0];
      if (!handle) throw new Pkcs11Error('PKCS11_FAILED', `the token ${JSON.stringify(this.tokenLabel)} holds no private key with CKA_ID ${id}`);
      this.handles.set(id, handle);
    }
    return handle;
  }

  /** Raw r‖s ECDSA P-256 signature of SHA-256(message), made by the token. */
  signSha256(id: string, message: Buffer): Buffer {
    const key = this.privateKey(id);
    const digest = createHash('sha256').update(message).digest();
    return this.call('C_Sign', () => {
      this.api.C_SignInit(this.session, { mechanism: this.c.CKM_ECDSA! }, key);
      return Buffer.from(this.api.C_Sign(this.session, digest, Buffer.alloc(64)));
    });
  }

  /** Remove every object with CKA_ID `id` from the token; returns how many there were. */
  destroy(id: string): number {
    this.handles.delete(id);
    const objects = this.objects(id);
    for (const o of objects) this.call('C_DestroyObject', () => this.api.C_DestroyObject(this.session, o));
    return objects.length;
  }

  /** What the token says of the private key with CKA_ID `id` (null: none). */
  attributes(id: string): TokenKeyAttributes | null {
    const handle = this.objects(id, this.c.CKO_PRIVATE_KEY!)[0];
    if (!handle) return null;
    const c = this.c;
    const values = this.call('C_GetAttributeValue', () =>
      this.api.C_GetAttributeValue(this.session, handle, [
        { type: c.CKA_TOKEN! },
        { type: c.CKA_SENSITIVE! },
        { type: c.CKA_EXTRACTABLE! },
        { type: c.CKA_LABEL! },
      ]),
    );
    const bool = (v: unknown) => (Buffer.isBuffer(v) ? v[0] === 1 : v === true);
    return {
      token: bool(values[0]!.value),
      sensitive: bool(values[1]!.value),
      extractable: bool(values[2]!.value),
      label: Buffer.isBuffer(values[3]!.value) ? values[3]!.value.toString('utf8') : String(values[3]!.value),
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.api.C_CloseSession(this.session);
    } catch {
      // the module is going away anyway
    }
    release(this.modulePath);
  }
}

function release(path: string): void {
  const entry = loaded.get(path);
  if (!entry) return;
  entry.users--;
  if (entry.users > 0) return;
  loaded.delete(path);
  try {
    entry.api.C_Finalize();
  } catch {
    // nothing more to do
  }
}
