/**
 * docs/ceremonies.md's runbook, followed once: every `sh alice|bob|carol` block of the document
 * is run, command by command, as that holder (their own DOCKER_CONFIG, holding only their own
 * keys), against Signet over HTTPS with a real registry; the real notary CLI checks that nothing
 * is served before the second holder signs, and that the new root is served after.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SIGNET_MAIN } from '../support/cli.js';
import { PASSPHRASES, SERVERS, Workbench } from '../support/interop.js';
import { projectRoot } from '../support/paths.js';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const missing = ['docker', 'docker-registry', 'notary'].filter((c) => !has(c));
const skip = missing.length > 0 && !process.env['CI'] ? `missing ${missing.join(', ')}` : false;

const DOC_REPO = 'registry.example.com/team/app';
const HOLDERS = ['alice', 'bob', 'carol'] as const;
type Holder = (typeof HOLDERS)[number];

/** The runbook's steps: each `sh <holder>` block's commands, in document order. */
function runbookSteps(): { holder: Holder; command: string }[] {
  const doc = readFileSync(path.join(projectRoot, 'docs', 'ceremonies.md'), 'utf8');
  const steps: { holder: Holder; command: string }[] = [];
  for (const m of doc.matchAll(/^```sh (alice|bob|carol)\n([\s\S]*?)^```$/gm)) {
    for (const line of m[2]!.split('\n')) {
      const command = line.trim();
      if (command && !command.startsWith('#')) steps.push({ holder: m[1] as Holder, command });
    }
  }
  return steps;
}

describe('the root-key rotation runbook of docs/ceremonies.md', { skip, timeout: 600_000 }, () => {
  let bench: Workbench;
  let repo: string;
  const dirs = {} as Record<Holder, string>;
  let bin: string;

  before(async () => {
    bench = await Workbench.start('runbook', SERVERS[0]!.start);
    await bench.registry.pushImage('team/app', 'v1');
    repo = bench.image('team/app');
    for (const h of HOLDERS) dirs[h] = bench.user();
    // `signet` on the PATH, as an installed package puts it.
    bin = path.join(bench.work, 'bin');
    mkdirSync(bin);
    writeFileSync(path.join(bin, 'signet'), `#!/bin/sh\nexec "${process.execPath}" "${SIGNET_MAIN}" "$@"\n`);
    chmodSync(path.join(bin, 'signet'), 0o755);
    // Where the runbook starts: the repository exists, with Alice's root key (1 of 1).
    bench.ok(await bench.signet(dirs.alice, 'trust', 'sign', `${repo}:v1`, '--signer', 'alice'));
  });
  after(() => bench?.stop());

  function sh(holder: Holder, command: string, id: string): Promise<{ code: number | null; out: string }> {
    return new Promise((resolve) => {
      const env = { ...process.env, CI: '', ...PASSPHRASES, ...bench.envOf(dirs[holder]), PATH: `${bin}:${process.env['PATH'] ?? ''}`, ID: id };
      const child = spawn('sh', ['-c', command.replaceAll(DOC_REPO, repo)], { cwd: dirs[holder], env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      child.on('exit', (code) => resolve({ code, out: `[${holder}] $ ${command}\n${out}` }));
    });
  }

  async function servedRootVersion(): Promise<number> {
    const reader = bench.user();
    bench.ok(await bench.notary(reader, 'list', repo));
    const root = JSON.parse(readFileSync(path.join(reader, 'trust', 'tuf', repo, 'metadata', 'root.json'), 'utf8')) as {
      signed: { version: number; roles: { root: { keyids: string[]; threshold: number } } };
    };
    return root.signed.version;
  }

  test('three holders, each on their own machine: root version 2 with 2 of 3 new root keys', async () => {
    const steps = runbookSteps();
    assert.ok(steps.length >= 8, `the runbook has its steps: ${JSON.stringify(steps)}`);
    let id = '';
    const transcript: string[] = [];
    for (const step of steps) {
      if (step.command.includes('stage root-rotate')) {
        // "Bob and Carol send bob.crt and carol.crt to Alice."
        for (const h of HOLDERS)
          for (const f of readdirSync(dirs[h]).filter((n) => n.endsWith('.crt'))) copyFileSync(path.join(dirs[h], f), path.join(dirs.alice, f));
      }
      if (step.holder === 'bob' && step.command.includes('stage sign')) {
        assert.equal(await servedRootVersion(), 1, 'staged, not served: readers still see root version 1');
      }
      const r = await sh(step.holder, step.command, id);
      transcript.push(r.out);
      assert.equal(r.code, 0, `${transcript.join('\n')}\n--- server ---\n${bench.server.output().slice(-2000)}`);
      if (step.command.includes('stage root-rotate')) {
        id = /(\S+@[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/.exec(r.out)?.[1] ?? '';
        assert.ok(id.startsWith(`${repo}@`), r.out);
        assert.match(r.out, /current-root: 1 of 1 signed \(met\)/);
        assert.match(r.out, /root: 1 of 2 signed, 1 more needed/);
      }
      if (step.command.includes('stage show')) assert.match(r.out, /~ roles\.root\.threshold: 1 → 2/);
      if (step.command.includes('stage sign')) assert.match(r.out, /Every threshold is met: published root version 2/);
      if (step.command.includes('stage list')) assert.match(r.out, /root version 2\s+published/);
    }
    assert.equal(await servedRootVersion(), 2);
    const reader = bench.user();
    bench.ok(await bench.notary(reader, 'list', repo));
    const root = JSON.parse(readFileSync(path.join(reader, 'trust', 'tuf', repo, 'metadata', 'root.json'), 'utf8')) as {
      signed: { roles: { root: { keyids: string[]; threshold: number } } };
    };
    assert.equal(root.signed.roles.root.threshold, 2);
    assert.equal(root.signed.roles.root.keyids.length, 3);
  });
});
