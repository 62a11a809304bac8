/**
 * RFC 3339 times as Notary (Go `time.Time`) writes and reads them: fractional seconds up to
 * nanoseconds and numeric offsets are legal; everything else is malformed.
 */

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|([+-])(\d{2}):(\d{2}))$/;

/** Milliseconds since the epoch, or null when `text` is not an RFC 3339 time. */
export function parseRfc3339(text: string): number | null {
  const m = RFC3339.exec(text);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) {
    return null;
  }
  // Not Date.UTC: it reads years 0-99 as 1900-1999, where Go reads them literally.
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  // Dates roll over silently (31 February becomes March); Go refuses such dates.
  if (date.getUTCDate() !== day) return null;
  const utc = date.getTime();
  const millis = m[7] ? Number(m[7].padEnd(3, '0').slice(0, 3)) : 0;
  let offset = 0;
  if (m[8] !== 'Z') {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return null;
    offset = (m[9] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
  }
  return utc + millis - offset;
}

/** Go's RFC3339Nano rendering in UTC: trailing zeros of the fraction trimmed. */
export function formatRfc3339(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2026-11-23T08:20:16.503Z
  return iso.replace(/\.?0+Z$/, 'Z').replace(/\.Z$/, 'Z');
}

/** HTTP Last-Modified in notary's format (Go time.RFC1123 in UTC). */
export function formatLastModified(ms: number): string {
  return new Date(ms).toUTCString().replace(/GMT$/, 'UTC');
}
