/**
 * What end-to-end tests with the real clients share: a trust server under test (Signet, or the
 * reference notary-server with its memory store) over HTTPS, a real registry, the stand-in
 * engine, and users, each its own DOCKER_CONFIG trusting the server's CA as docker does, who
 * run `signet`, `docker` and `notary` with passphrases from the environment.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SIGNET_MAIN } from './cli.js';
import { createTestDatabase } from './database.js';
import { startStandInEngine, type StandInEngine } from './engine.js';
import { freePort, makeNotaryTls, NOTARY_PASSPHRASES, startMemoryNotaryServer } from './notary-reference.js';
import { startRegistry, type TestRegistry } from './registry.js';
import { spawnServer } from './server.js';
import { makeTestTls } from './tls.js';

export const PASSPHRASES = {
  DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE: 'interop-root-pass',
  DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE: 'interop-repo-pass',
  COSIGN_PASSWORD: 'interop-cosign-pass',
  ...NOTARY_PASSPHRASES,
};

export interface Result {
  code: number | null;
  out: string;
  stdout: string;
}

export function run(cmd: string, args: string[], env: Record<string, string>): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: { ...process.env, CI: '', ...PASSPHRASES, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => resolve({ code, out: `$ ${cmd === process.execPath ? 'signet' : cmd} ${args.join(' ')}\n${out}`, stdout }));
  });
}

export interface TrustServerUnderTest {
  label: string;
  url: string;
  /** The CA that signed its TLS certificate (PEM file). */
  ca: string;
  stop(): Promise<void>;
  output(): string;
}

/** Signet over HTTPS as its own process (with `env` added to its settings). */
export async function startSignetUnderTest(env: Record<string, string> = {}): Promise<TrustServerUnderTest> {
  const db = await createTestDatabase();
  const tls = makeTestTls();
  const proc = await spawnServer({
    SIGNET_DATA_DIR: db.dataDir,
    SIGNET_TLS_CERT: tls.cert,
    SIGNET_TLS_KEY: tls.key,
    ...(db.url ? { DATABASE_URL: db.url } : {}),
    ...env,
  });
  return {
    label: 'Signet',
    url: proc.url,
    ca: tls.caCert,
    output: proc.output,
    stop: async () => {
      await proc.stop();
      await db.drop();
      rmSync(tls.dir, { recursive: true, force: true });
    },
  };
}

export const SERVERS: { label: string; start(work: string): Promise<TrustServerUnderTest> }[] = [
  {
    label: 'Signet',
    start: () => startSignetUnderTest(),
  },
  {
    label: 'the reference notary-server',
    async start(work) {
      const dir = path.join(work, 'notary-server');
      mkdirSync(dir);
      const tls = makeNotaryTls(dir);
      const proc = await startMemoryNotaryServer({ dir, tls, port: await freePort() });
      return { label: 'the reference notary-server', url: proc.url, ca: tls.ca, output: proc.output, stop: proc.stop };
    },
  },
];

/** A trust server, a registry and an engine, and the users who work with them. */
export class Workbench {
  private users = 0;
  private constructor(
    readonly work: string,
    readonly registry: TestRegistry,
    readonly engine: StandInEngine,
    readonly server: TrustServerUnderTest,
  ) {}

  static async start(label: string, startServer: (work: string) => Promise<TrustServerUnderTest>): Promise<Workbench> {
    const work = mkdtempSync(path.join(os.tmpdir(), `signet-${label.replace(/\W+/g, '-')}-`));
    const registry = await startRegistry();
    const engine = await startStandInEngine(path.join(work, 'docker.sock'), registry.url);
    const server = await startServer(work);
    return new Workbench(work, registry, engine, server);
  }

  async stop(): Promise<void> {
    await this.server.stop();
    await this.engine.close();
    await this.registry.stop();
    rmSync(this.work, { recursive: true, force: true });
  }

  /** A new user: its own DOCKER_CONFIG trusting the server's CA as docker does. */
  user(): string {
    const dir = path.join(this.work, `user-${++this.users}`);
    const hostPort = new URL(this.server.url).host;
    mkdirSync(path.join(dir, 'tls', hostPort), { recursive: true });
    copyFileSync(this.server.ca, path.join(dir, 'tls', hostPort, 'ca.crt'));
    return dir;
  }

  envOf(dir: string): Record<string, string> {
    return { DOCKER_CONFIG: dir, DOCKER_CONTENT_TRUST_SERVER: this.server.url, DOCKER_HOST: `unix://${this.engine.socket}` };
  }
  signet(dir: string, ...args: string[]): Promise<Result> {
    return run(process.execPath, [SIGNET_MAIN, ...args], this.envOf(dir));
  }
  docker(dir: string, ...args: string[]): Promise<Result> {
    return run('docker', args, this.envOf(dir));
  }
  notary(dir: string, ...args: string[]): Promise<Result> {
    return run('notary', ['-s', this.server.url, '-d', path.join(dir, 'trust'), '--tlscacert', this.server.ca, ...args], this.envOf(dir));
  }
  image(repo: string): string {
    return `${this.registry.host}/${repo}`;
  }
  /** Fails with the command's output (and the server's last log lines) unless it exited 0. */
  ok(r: Result): Result {
    if (r.code !== 0) throw new Error(`${r.out}\n--- ${this.server.label} ---\n${this.server.output().slice(-2000)}`);
    return r;
  }
}
