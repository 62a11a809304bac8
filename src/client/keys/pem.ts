/**
 * PEM blocks with headers, read and written as Go's encoding/pem does: notary keeps a key's role
 * and GUN in PEM headers (`role: targets`, `gun: docker.io/library/app`), which OpenSSL's PEM
 * reader does not accept, so Node cannot be handed these files directly.
 */
import { KeyStoreError } from './errors.js';

export interface PemBlock {
  type: string;
  headers: Record<string, string>;
  bytes: Buffer;
}

/**
 * Go's pem.EncodeToMemory: `Proc-Type` first, the other headers sorted by name, a blank line after
 * them, base64 in 64-column lines, a final newline.
 */
export function encodePem(block: PemBlock): string {
  const names = Object.keys(block.headers).sort();
  const ordered = names.includes('Proc-Type') ? ['Proc-Type', ...names.filter((n) => n !== 'Proc-Type')] : names;
  let out = `-----BEGIN ${block.type}-----\n`;
  for (const name of ordered) out += `${name}: ${block.headers[name]}\n`;
  if (ordered.length) out += '\n';
  const b64 = block.bytes.toString('base64');
  for (let i = 0; i < b64.length; i += 64) out += b64.slice(i, i + 64) + '\n';
  return out + `-----END ${block.type}-----\n`;
}

const BEGIN = /-----BEGIN ([^\r\n-][^\r\n]*?)-----[ \t]*\r?\n/;

/**
 * The first PEM block in `text` (Go's pem.Decode: text before it is skipped), or null if there is
 * none. `what` names the source in errors (a file path). Throws KEY_UNREADABLE for a block that
 * starts but is broken: no END line, bad base64.
 */
export function decodePem(text: string, what: string): PemBlock | null {
  const begin = BEGIN.exec(text);
  if (!begin) return null;
  const type = begin[1]!;
  const bodyStart = begin.index + begin[0].length;
  const endMarker = `-----END ${type}-----`;
  const endAt = text.indexOf(endMarker, bodyStart);
  if (endAt < 0) throw new KeyStoreError('KEY_UNREADABLE', `${what}: PEM block "${type}" has no END line (truncated?)`);
  const lines = text.slice(bodyStart, endAt).split(/\r?\n/);
  const headers: Record<string, string> = {};
  let i = 0;
  // Headers are "Name: value" lines before the base64; a blank line ends them.
  for (; i < lines.length; i++) {
    const line = lines[i]!.trimEnd();
    const colon = line.indexOf(':');
    if (colon < 0) break;
    headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  const b64 = lines.slice(i).join('').replace(/[ \t]/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) {
    throw new KeyStoreError('KEY_UNREADABLE', `${what}: PEM block "${type}" is not valid base64`);
  }
  return { type, headers, bytes: Buffer.from(b64, 'base64') };
}
