/**
 * The settings table of docs/configuration.md, generated from the configuration schema so the
 * reference cannot drift from the code (a test compares the two): `signet config --markdown`.
 */
import { configSchema } from '../config.js';

interface Described {
  type: string;
  defaultValue?: unknown;
  minimum?: number;
  maximum?: number;
  options?: string[];
}

/** Walk through default/optional/pipe wrappers to the base type, collecting what matters. */
function describe(schema: unknown): Described {
  const out: Described = { type: 'unknown' };
  let s = schema as { _zod: { def: Record<string, unknown>; bag?: Record<string, unknown> } };
  for (let i = 0; i < 10; i++) {
    const def = s._zod.def;
    if (def['type'] === 'default') {
      const v = def['defaultValue'];
      out.defaultValue = typeof v === 'function' ? (v as () => unknown)() : v;
      s = def['innerType'] as typeof s;
    } else if (def['type'] === 'optional' || def['type'] === 'nullable') {
      s = def['innerType'] as typeof s;
    } else if (def['type'] === 'pipe') {
      s = def['in'] as typeof s;
    } else break;
  }
  const def = s._zod.def;
  out.type = String(def['type']);
  for (const check of (def['checks'] as { _zod: { def: { check: string; value?: unknown } } }[] | undefined) ?? []) {
    const c = check._zod.def;
    if (c.check === 'greater_than' && typeof c.value === 'number') out.minimum = c.value;
    if (c.check === 'less_than' && typeof c.value === 'number') out.maximum = c.value;
  }
  if (def['type'] === 'enum') out.options = Object.values(def['entries'] as Record<string, string>);
  return out;
}

const DAY = 86_400;
const MIB = 1024 * 1024;

function amount(name: string, n: number): string {
  if (name.endsWith('_BYTES') && n >= MIB && n % MIB === 0) return `${n} (${n / MIB >= 1024 ? `${n / MIB / 1024} GiB` : `${n / MIB} MiB`})`;
  const seconds = !name.endsWith('_MS') && /EXPIRY|BEFORE|WINDOW|INTERVAL|MAX_AGE/.test(name);
  if (seconds && n >= DAY && n % DAY === 0) return `${n} (${n / DAY >= 365 && n % (365 * DAY) === 0 ? `${n / DAY / 365} years` : `${n / DAY} days`})`;
  return String(n);
}

function allowed(name: string, d: Described): string {
  if (d.options) return d.options.map((o) => `\`${o}\``).join(', ');
  if (d.type === 'number') return `${amount(name, d.minimum ?? 0)}–${amount(name, d.maximum ?? Number.MAX_SAFE_INTEGER)}`;
  if (name === 'DATABASE_URL') return '`postgres://` URL';
  if (/_(CERT|KEY|CA|BUNDLE)$/.test(name) && name !== 'SIGNET_KEY_ENCRYPTION_KEY') return 'file path';
  if (name === 'SIGNET_KEY_ENCRYPTION_KEY') return '32 bytes as 64 hex characters, or base64';
  if (name === 'SIGNET_AUTH_REALM') return 'URL';
  return 'text';
}

export function configReference(): string {
  const lines = ['| variable | default | allowed values | meaning |', '|---|---|---|---|'];
  for (const [name, schema] of Object.entries(configSchema.shape)) {
    const d = describe(schema);
    const def =
      d.defaultValue === undefined ? 'unset' : typeof d.defaultValue === 'number' ? `\`${amount(name, d.defaultValue)}\`` : `\`${String(d.defaultValue)}\``;
    const meaning = (schema as { description?: string }).description ?? '';
    lines.push(`| \`${name}\` | ${def.replace(/`(\d+) \((.*)\)`/, '`$1` ($2)')} | ${allowed(name, d)} | ${meaning} |`);
  }
  return lines.join('\n');
}
