/**
 * The settings table of docs/configuration.md, generated from the configuration schema so the
 * reference cannot drift from the code (a test compares the two): `signet config --markdown`.
 */
import { z } from 'zod';
import { configSchema } from '../config.js';

interface Described {
  type: string;
  defaultValue?: unknown;
  minimum?: number;
  maximum?: number;
  options?: string[];
}

type JsonSchemaProperty = { type?: string; default?: unknown; minimum?: number; maximum?: number; enum?: unknown[]; description?: string };

/** Each setting as JSON Schema (zod's own export): its type, default, bounds and choices. */
function describeAll(): Map<string, Described & { description: string }> {
  // `input`: what an operator writes; `any` for the parts JSON Schema cannot express (refinements).
  const json = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, JsonSchemaProperty> };
  const out = new Map<string, Described & { description: string }>();
  for (const [name, p] of Object.entries(json.properties ?? {})) {
    out.set(name, {
      type: p.type === 'integer' ? 'number' : (p.type ?? 'unknown'),
      ...(p.default !== undefined ? { defaultValue: p.default } : {}),
      ...(p.minimum !== undefined ? { minimum: p.minimum } : {}),
      ...(p.maximum !== undefined ? { maximum: p.maximum } : {}),
      ...(p.enum ? { options: p.enum.map(String) } : {}),
      description: p.description ?? '',
    });
  }
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
  for (const [name, d] of describeAll()) {
    const def =
      d.defaultValue === undefined ? 'unset' : typeof d.defaultValue === 'number' ? `\`${amount(name, d.defaultValue)}\`` : `\`${String(d.defaultValue)}\``;
    const meaning = d.description;
    lines.push(`| \`${name}\` | ${def.replace(/`(\d+) \((.*)\)`/, '`$1` ($2)')} | ${allowed(name, d)} | ${meaning} |`);
  }
  return lines.join('\n');
}
