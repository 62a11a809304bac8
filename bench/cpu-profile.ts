/**
 * Where a short process spends its time: a V8 CPU profile (`node --cpu-prof`) of one run, its
 * samples put into a few categories by their stack (module loading, TLS set-up, waiting on the
 * network, trust-store writes, crypto, …). Used by the client benchmark to say what dominates
 * the wall time of a `signet` command.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Wall time covered by the profile (from V8 start-up to exit), ms. */
  profiledMs: number;
  /** Category → ms, largest first. */
  categories: { category: string; ms: number }[];
  /** The functions with the most inclusive time under "other JS", for a closer look. */
  topOther: { frame: string; ms: number }[];
}

export const CATEGORIES = {
  idle: 'idle: waiting for the server or the network',
  tlsCa: "TLS: the process's first secure context and its CA list (Node's bundled roots + --tlscacert)",
  modules: 'loading modules (resolve, read, compile, link)',
  moduleInit: "modules' top-level code (zod schema construction, …)",
  storeWrites: 'trust-store writes (temp file, fsync, rename)',
  crypto: 'crypto (signatures, key decryption, hashing)',
  net: 'HTTP/TLS client (handshakes, parsing)',
  gc: 'garbage collection',
  program: 'native, outside JS ((program))',
  other: 'other JS (Signet, zod parsing, node internals)',
} as const;

type Category = keyof typeof CATEGORIES;

function shortUrl(url: string): string {
  const i = url.indexOf('/dist/');
  if (i >= 0) return url.slice(i + 1);
  const j = url.indexOf('/node_modules/');
  return j >= 0 ? url.slice(j + 1) : url;
}

const frameName = (f: CallFrame) => `${f.functionName || '(anonymous)'} ${shortUrl(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;

/** The category of one sample, from its stack (leaf first). */
function categorize(stack: CallFrame[]): Category {
  const leaf = stack[0]!;
  if (leaf.functionName === '(idle)') return 'idle';
  if (leaf.functionName === '(garbage collector)') return 'gc';
  if (leaf.functionName === '(program)') return 'program';
  const has = (test: (f: CallFrame) => boolean) => stack.some(test);
  if (has((f) => f.functionName === 'addCACerts' || f.functionName === 'createSecureContext')) return 'tlsCa';
  if (has((f) => f.functionName === 'writeFileAtomic')) return 'storeWrites';
  // A module's top-level code runs under the loader's `run`; the command's own work starts in main().
  const inMain = has((f) => f.functionName === 'main' && f.url.endsWith('/cli/main.js'));
  if (!inMain && has((f) => f.url.startsWith('file:') && f.lineNumber === 0 && f.functionName === '')) return 'moduleInit';
  if (has((f) => f.url.startsWith('node:internal/modules/') || f.functionName === 'compileForInternalLoader' || f.functionName === 'compileForPublicLoader'))
    return 'modules';
  if (has((f) => f.url.startsWith('node:internal/crypto/') || /^(pbkdf2Sync|sign|verify|createPrivateKey|createPublicKey)$/.test(f.functionName)))
    return 'crypto';
  if (has((f) => /^node:(_tls_wrap|_tls_common|tls|https|http|_http_\w+|net|internal\/tls\/.*|internal\/http)$/.test(f.url))) return 'net';
  return 'other';
}

/** Summarise the single .cpuprofile in `dir`. */
export function summarizeProfile(dir: string): ProfileSummary {
  const file = readdirSync(dir).find((n) => n.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile in ${dir}`);
  const profile = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

  const categories = new Map<Category, number>();
  const other = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const stack: CallFrame[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) stack.push(byId.get(cur)!.callFrame);
    const category = categorize(stack);
    categories.set(category, (categories.get(category) ?? 0) + us);
    if (category === 'other') {
      const seen = new Set<string>();
      for (const f of stack) {
        if (!f.url.startsWith('file:')) continue;
        const name = frameName(f);
        if (seen.has(name)) continue;
        seen.add(name);
        other.set(name, (other.get(name) ?? 0) + us);
      }
    }
  }
  return {
    profiledMs: (profile.endTime - profile.startTime) / 1000,
    categories: [...categories]
      .map(([c, us]) => ({ category: CATEGORIES[c], ms: us / 1000 }))
      .filter((c) => c.ms >= 0.05)
      .sort((a, b) => b.ms - a.ms),
    topOther: [...other]
      .map(([frame, us]) => ({ frame, ms: us / 1000 }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 8),
  };
}

/** Several profiles of the same command: the median of each category (0 where a run has none), and of the coverage. */
export function combineProfiles(summaries: ProfileSummary[]): ProfileSummary {
  const median = (values: number[]) => {
    const v = [...values].sort((a, b) => a - b);
    const n = v.length;
    return n % 2 ? v[(n - 1) / 2]! : (v[n / 2 - 1]! + v[n / 2]!) / 2;
  };
  const names = [...new Set(summaries.flatMap((s) => s.categories.map((c) => c.category)))];
  const byWall = [...summaries].sort((a, b) => a.profiledMs - b.profiledMs);
  return {
    profiledMs: median(summaries.map((s) => s.profiledMs)),
    categories: names
      .map((category) => ({ category, ms: median(summaries.map((s) => s.categories.find((c) => c.category === category)?.ms ?? 0)) }))
      .filter((c) => c.ms >= 0.05)
      .sort((a, b) => b.ms - a.ms),
    topOther: byWall[Math.floor((byWall.length - 1) / 2)]!.topOther,
  };
}
