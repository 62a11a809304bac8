/**
 * `signet gate` as its own process, as operators run it: a bad policy or bad options end with
 * exit 2 and one line naming the field and its line; a good policy serves over TLS and says
 * where; the policy is reloaded when the file changes and on SIGHUP, a bad rewrite keeping the
 * last good policy in force (and logged); SIGTERM stops it.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runSignet, SIGNET_MAIN, type CliResult } from '../support/cli.js';
import { eventually, gateRequest } from '../support/gate.js';
import { makeTestTls, type TestTls } from '../support/tls.js';
import { certKey } from '../support/tuf-kit.js';

/** A good policy, line by line (the line numbers are part of what the tests check). */
const GOOD = [
  'version: 1', // 1
  'trust:', // 2
  '  nowhere:', // 3
  '    notary: http://127.0.0.1:9', // 4
  '    rootKeys: [root.pem]', // 5
  'rules:', // 6
  '  - images: ["registry.example.com/signed/**"]', // 7
  '    trust: nowhere', // 8
  '    signers: [alice, bob]', // 9
  '    threshold: 2', // 10
  '  - images: ["registry.example.com/**"]', // 11
  '    action: deny ', // 12 (padded: "allow" and "deny " have one size)
  'cache:', // 13
  '  refreshSeconds: 30', // 14
];
const good = (edit: (lines: string[]) => void = () => {}) => {
  const lines = [...GOOD];
  edit(lines);
  return `${lines.join('\n')}\n`;
};

function oneLine(r: CliResult, pattern: RegExp): void {
  assert.equal(r.code, 2, `exit 2 expected:\n${r.stdout}${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line expected, got:\n${r.stderr}`);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(r.stdout, '', 'nothing on stdout: it never listened');
}

interface GateProcess {
  url: string;
  child: ChildProcess;
  stderr(): string;
  logLines(): Record<string, any>[];
}

function spawnGate(args: string[]): Promise<GateProcess> {
  const child = spawn(process.execPath, [SIGNET_MAIN, 'gate', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  child.once('exit', () => process.removeListener('exit', reap));
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`signet gate did not start:\n${stdout}${stderr}`));
    }, 20_000);
    child.stdout!.on('data', (c: Buffer) => {
      stdout += c.toString();
      const m = /^signet gate listening on (\S+)$/m.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve({
          url: m[1]!,
          child,
          stderr: () => stderr,
          logLines: () =>
            stderr
              .split('\n')
              .filter((l) => l.startsWith('{'))
              .map((l) => JSON.parse(l) as Record<string, any>),
        });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`signet gate exited with ${code}:\n${stdout}${stderr}`));
    });
  });
}

describe('signet gate: the command', { timeout: 90_000 }, () => {
  let dir: string;
  let tls: TestTls;
  let ca: string;
  const policy = () => path.join(dir, 'policy.yaml');
  const write = (text: string, file = policy()) => writeFileSync(file, text);
  const gate = (file: string, extra: string[] = []) => runSignet(['gate', '--policy', file, '--plain-http', '--host', '127.0.0.1', '--port', '0', ...extra]);

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'signet-gate-cli-'));
    tls = makeTestTls();
    ca = readFileSync(tls.caCert, 'utf8');
    writeFileSync(path.join(dir, 'root.pem'), Buffer.from(certKey({ commonName: 'registry.example.com/signed/app' }).publicB64, 'base64'));
  });
  after(() => {
    for (const d of [dir, tls?.dir]) if (d) rmSync(d, { recursive: true, force: true });
  });

  test('a bad policy: exit 2 with one line naming the field and its line', async () => {
    const cases: [string, string, RegExp][] = [
      ['syntax.yaml', good((l) => (l[10] = '  - images: ["registry.example.com/**"')), /^signet gate: .*syntax\.yaml:12: not YAML or JSON: /],
      ['unknown.yaml', good((l) => (l[11] = '    acton: deny')), /^signet gate: .*unknown\.yaml:12: rules\[1\]\.acton: Unrecognized key: "acton"$/],
      ['unknown-top.yaml', good((l) => l.push('namespace:', '  exclude: [kube-system]')), /unknown-top\.yaml:15: namespace: Unrecognized key: "namespace"$/],
      [
        'neither.yaml',
        good((l) => l.splice(11, 1)),
        /neither\.yaml:11: rules\[1\]: a rule needs a trust source \(trust, allOf or anyOf\) or an action \(allow or deny\)$/,
      ],
      ['both.yaml', good((l) => l.splice(8, 2, '    action: allow')), /both\.yaml:9: rules\[0\]\.action: trust and action exclude each other$/],
      [
        'missing-key.yaml',
        good((l) => (l[4] = '    rootKeys: [root.pem, keys/missing.pem]')),
        /missing-key\.yaml:5: trust\.nowhere\.rootKeys\[1\]: cannot read .*keys\/missing\.pem: ENOENT$/,
      ],
      ['threshold.yaml', good((l) => (l[9] = '    threshold: 3')), /threshold\.yaml:10: rules\[0\]\.threshold: threshold 3 is more than the 2 signers listed$/],
      ['source.yaml', good((l) => (l[7] = '    trust: elsewhere')), /source\.yaml:8: rules\[0\]\.trust: no trust source named elsewhere$/],
      ['version.yaml', good((l) => (l[0] = 'version: 2')), /version\.yaml:1: version: /],
      ['refresh.yaml', good((l) => (l[13] = '  refreshSeconds: fast')), /refresh\.yaml:14: cache\.refreshSeconds: /],
    ];
    for (const [name, text, pattern] of cases) {
      write(text, path.join(dir, name));
      oneLine(await gate(path.join(dir, name)), pattern);
    }
    oneLine(await gate(path.join(dir, 'no-such-policy.yaml')), /cannot read the policy .*no-such-policy\.yaml: ENOENT/);
  });

  test('options: --policy is needed, and TLS unless --plain-http', async () => {
    write(good());
    oneLine(await runSignet(['gate', '--plain-http']), /--policy FILE is needed/);
    oneLine(await runSignet(['gate', '--policy', policy()]), /--tls-cert and --tls-key are needed/);
    oneLine(await runSignet(['gate', '--policy', policy(), '--tls-cert', tls.cert]), /--tls-cert and --tls-key go together/);
    oneLine(await runSignet(['gate', '--policy', policy(), '--tls-cert', tls.cert, '--tls-key', tls.key, '--plain-http']), /--plain-http excludes --tls-cert/);
    oneLine(
      await runSignet(['gate', '--policy', policy(), '--tls-cert', path.join(dir, 'nope.crt'), '--tls-key', tls.key]),
      /cannot read certificate .*nope\.crt/,
    );
    oneLine(await gate(policy(), ['--port', '99999']), /--port must be a port number/);
    oneLine(await gate(policy(), ['--log-level', 'loud']), /--log-level must be/);
    const help = await runSignet(['gate', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^usage: signet gate --policy FILE/);
  });

  test('a good policy: listens over TLS, says where, reloads on change and on SIGHUP, keeps the last good policy, stops on SIGTERM', async () => {
    write(good());
    const g = await spawnGate(['--policy', policy(), '--tls-cert', tls.cert, '--tls-key', tls.key, '--host', '127.0.0.1', '--port', '0']);
    try {
      assert.match(g.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const health = await gateRequest(g.url, 'GET', '/healthz', undefined, { ca });
      assert.equal(health.status, 200);
      assert.deepEqual(health.json, { ok: true });
      // Without the CA the certificate is not trusted.
      await assert.rejects(gateRequest(g.url, 'GET', '/healthz'), /certificate/);

      const allowed = async () => {
        const res = await gateRequest(g.url, 'POST', '/v1/verify', { image: 'registry.example.com/team/app:v1' }, { ca });
        assert.equal(res.status, 200, res.text);
        return res.json.allowed as boolean;
      };
      assert.equal(await allowed(), false);

      // The file changes: the new policy is in force within a few seconds.
      write(good((l) => (l[11] = '    action: allow')));
      await eventually('the rewritten policy is in force', async () => ((await allowed()) ? true : undefined), 10_000, 200);
      assert.ok(g.logLines().some((l) => l['msg'] === 'policy reloaded' && l['why'] === 'file changed'));

      // A bad rewrite: logged, and the last good policy stays.
      write(good((l) => (l[9] = '    threshold: 5')));
      const failed = await eventually(
        'the failed reload is logged',
        () => g.logLines().find((l) => l['msg'] === 'policy reload failed; the last good policy stays in force'),
        10_000,
        200,
      );
      assert.equal(failed['level'], 'error');
      assert.match(failed['error'] as string, /policy\.yaml:10: rules\[0\]\.threshold: threshold 5 is more than the 2 signers listed/);
      assert.equal(await allowed(), true, 'decisions are unchanged');

      // SIGHUP: a policy put in place with the same size and time, which the watcher cannot see
      // (times in whole seconds, which survive utimes exactly).
      const time = Math.floor(Date.now() / 1000) - 60;
      utimesSync(policy(), time, time); // seen: one more failed reload
      await new Promise((r) => setTimeout(r, 2_500));
      const next = path.join(dir, 'next.yaml');
      write(
        good((l) => (l[9] = '    threshold: 1')),
        next,
      ); // deny again, and as long as the bad file
      assert.equal(statSync(next).size, statSync(policy()).size);
      utimesSync(next, time, time);
      renameSync(next, policy());
      await new Promise((r) => setTimeout(r, 2_500));
      assert.equal(await allowed(), true, 'the watcher saw no change');
      g.child.kill('SIGHUP');
      await eventually('SIGHUP reloads', async () => ((await allowed()) ? undefined : true), 5_000, 100);
      // The log line is written just after the new policy takes effect: it may arrive a moment later.
      await eventually(
        'the SIGHUP reload is logged',
        () => g.logLines().some((l) => l['msg'] === 'policy reloaded' && l['why'] === 'SIGHUP') || undefined,
        5_000,
        100,
      );
      // Each decision is logged.
      await eventually(
        'decisions are logged',
        () => g.logLines().some((l) => l['msg'] === 'gate decision' && l['image'] === 'registry.example.com/team/app:v1') || undefined,
        5_000,
        100,
      );
    } finally {
      const exited = new Promise<number | null>((resolve) => {
        if (g.child.exitCode !== null) resolve(g.child.exitCode);
        else g.child.once('exit', (code) => resolve(code));
      });
      g.child.kill('SIGTERM');
      const timer = setTimeout(() => g.child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      assert.equal(code, 0, `SIGTERM: exit 0, got ${code}:\n${g.stderr()}`);
      assert.throws(() => process.kill(g.child.pid!, 0), { code: 'ESRCH' }, 'no process left');
    }
  });
});
