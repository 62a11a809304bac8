/**
 * Image references as docker reads them: the registry host detection, Docker Hub's normalisation,
 * the name (the notary GUN) and the familiar form, tags and digests, and the references docker
 * refuses, each refused with BAD_REFERENCE and a reason.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatImageReference, manifestReference, parseImageReference, ReferenceError, registryApiHost } from '../../src/registry/reference.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const HEX64 = '1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a';

/** input → registry, repository, tag, digest, familiar */
const VALID: [string, string, string, string | undefined, string | undefined, string][] = [
  ['ubuntu', 'docker.io', 'library/ubuntu', undefined, undefined, 'ubuntu'],
  ['ubuntu:22.04', 'docker.io', 'library/ubuntu', '22.04', undefined, 'ubuntu'],
  ['library/ubuntu', 'docker.io', 'library/ubuntu', undefined, undefined, 'ubuntu'],
  ['docker.io/ubuntu', 'docker.io', 'library/ubuntu', undefined, undefined, 'ubuntu'],
  ['docker.io/library/ubuntu:latest', 'docker.io', 'library/ubuntu', 'latest', undefined, 'ubuntu'],
  ['index.docker.io/ubuntu', 'docker.io', 'library/ubuntu', undefined, undefined, 'ubuntu'],
  ['index.docker.io/alice/app', 'docker.io', 'alice/app', undefined, undefined, 'alice/app'],
  ['alice/app', 'docker.io', 'alice/app', undefined, undefined, 'alice/app'],
  ['alice/team/app', 'docker.io', 'alice/team/app', undefined, undefined, 'alice/team/app'],
  ['docker.io/library/a/b', 'docker.io', 'library/a/b', undefined, undefined, 'library/a/b'],
  ['registry.example.com/team/app:v1', 'registry.example.com', 'team/app', 'v1', undefined, 'registry.example.com/team/app'],
  ['registry.example.com/app', 'registry.example.com', 'app', undefined, undefined, 'registry.example.com/app'],
  ['registry.example.com:5000/team/app', 'registry.example.com:5000', 'team/app', undefined, undefined, 'registry.example.com:5000/team/app'],
  ['localhost/app', 'localhost', 'app', undefined, undefined, 'localhost/app'],
  ['localhost:5000/app:dev', 'localhost:5000', 'app', 'dev', undefined, 'localhost:5000/app'],
  ['127.0.0.1:5000/team/app', '127.0.0.1:5000', 'team/app', undefined, undefined, '127.0.0.1:5000/team/app'],
  ['myregistry:5000/app', 'myregistry:5000', 'app', undefined, undefined, 'myregistry:5000/app'],
  ['[::1]:5000/app', '[::1]:5000', 'app', undefined, undefined, '[::1]:5000/app'],
  ['[fc00:1:2:3:4:5:6:7]:5000/library/debian', '[fc00:1:2:3:4:5:6:7]:5000', 'library/debian', undefined, undefined, '[fc00:1:2:3:4:5:6:7]:5000/library/debian'],
  // An upper-case first component is a host: repository components are lower-case.
  ['LOCALDOMAIN/debian', 'LOCALDOMAIN', 'debian', undefined, undefined, 'LOCALDOMAIN/debian'],
  // Without a slash there is no host: the name is Docker Hub's, the rest a tag.
  ['localhost', 'docker.io', 'library/localhost', undefined, undefined, 'localhost'],
  ['192.168.0.1:80', 'docker.io', 'library/192.168.0.1', '80', undefined, '192.168.0.1'],
  ['team/app', 'docker.io', 'team/app', undefined, undefined, 'team/app'],
  ['a-b---c/d__e/f.g_h', 'docker.io', 'a-b---c/d__e/f.g_h', undefined, undefined, 'a-b---c/d__e/f.g_h'],
  [`docker.io/${HEX64}`, 'docker.io', `library/${HEX64}`, undefined, undefined, HEX64],
  [`ubuntu@${DIGEST}`, 'docker.io', 'library/ubuntu', undefined, DIGEST, 'ubuntu'],
  [`registry.example.com/team/app:v1@${DIGEST}`, 'registry.example.com', 'team/app', 'v1', DIGEST, 'registry.example.com/team/app'],
  ['app:_under', 'docker.io', 'library/app', '_under', undefined, 'app'],
  [`app:${'t'.repeat(128)}`, 'docker.io', 'library/app', 't'.repeat(128), undefined, 'app'],
  ['app:V1.0-RC_2', 'docker.io', 'library/app', 'V1.0-RC_2', undefined, 'app'],
];

/** input → a pattern its reason must match */
const INVALID: [string, RegExp][] = [
  ['', /empty/],
  [HEX64, /image ID/],
  ['Ubuntu', /lower-case/],
  ['docker/Docker', /lower-case/],
  ['docker.io/docker/Docker', /lower-case/],
  ['registry.example.com/Team/app', /lower-case/],
  ['https://github.com/docker/docker', /./],
  ['-docker', /repository name/],
  ['-docker/docker', /repository name/],
  ['docker-/docker', /repository name/],
  ['-docker.io/docker/docker', /registry host/],
  ['docker///docker', /repository name/],
  ['dock..er/docker', /registry host/],
  ['dock..er/docker', /registry host/],
  ['____/____', /repository name/],
  ['docker/', /repository name/],
  ['registry.example.com/', /repository name/],
  ['[fc00::1]', /repository name/],
  ['[fc00::1]:5000', /repository name|tag/],
  ['fc00::1:5000/debian', /registry host/],
  ['[fe80::1%eth0]:5000/debian', /registry host/],
  ['[2001:db8:3:4::192.0.2.33]:5000/debian', /registry host/],
  ['ubuntu:', /tag ""/],
  ['ubuntu:-dash', /tag "-dash"/],
  ['ubuntu:.dot', /tag/],
  [`ubuntu:${'t'.repeat(129)}`, /tag/],
  ['ubuntu:a:b', /tag/],
  ['ubuntu@sha256:abc', /digest/],
  [`ubuntu@sha256:${'AB'.repeat(32)}`, /lower-case hex/],
  [`ubuntu@sha512:${'ab'.repeat(64)}`, /unsupported digest algorithm "sha512"/],
  [`ubuntu@${'ab'.repeat(32)}`, /digest/],
  ['ubuntu app', /white space/],
  [`a/${'b'.repeat(256)}`, /longer than 255/],
];

describe('image references', () => {
  for (const [input, registry, repository, tag, digest, familiar] of VALID) {
    test(`parses ${JSON.stringify(input)}`, () => {
      const ref = parseImageReference(input);
      assert.deepEqual(ref, {
        registry,
        repository,
        ...(tag !== undefined ? { tag } : {}),
        ...(digest !== undefined ? { digest } : {}),
        name: `${registry}/${repository}`,
        familiar,
      });
    });
  }

  for (const [input, reason] of INVALID) {
    test(`refuses ${JSON.stringify(input.length > 60 ? `${input.slice(0, 60)}…` : input)}`, () => {
      assert.throws(
        () => parseImageReference(input),
        (e: unknown) => {
          assert.ok(e instanceof ReferenceError, String(e));
          assert.equal(e.code, 'BAD_REFERENCE');
          assert.match(e.reason, reason);
          assert.ok(!e.message.includes('\n'), 'one line');
          return true;
        },
      );
    });
  }

  test('the name is the notary GUN; formatting gives back the full and the familiar forms', () => {
    const ref = parseImageReference('registry.example.com/team/app:v1');
    assert.equal(ref.name, 'registry.example.com/team/app');
    assert.equal(formatImageReference(ref), 'registry.example.com/team/app:v1');
    const hub = parseImageReference(`ubuntu:22.04@${DIGEST}`);
    assert.equal(formatImageReference(hub), `docker.io/library/ubuntu:22.04@${DIGEST}`);
    assert.equal(formatImageReference(hub, { familiar: true }), `ubuntu:22.04@${DIGEST}`);
  });

  test('the manifest asked for is the digest, else the tag, else latest; Docker Hub answers at registry-1.docker.io', () => {
    assert.equal(manifestReference(parseImageReference(`app:v1@${DIGEST}`)), DIGEST);
    assert.equal(manifestReference(parseImageReference('app:v1')), 'v1');
    assert.equal(manifestReference(parseImageReference('app')), 'latest');
    assert.equal(registryApiHost('docker.io'), 'registry-1.docker.io');
    assert.equal(registryApiHost('registry.example.com:5000'), 'registry.example.com:5000');
  });
});
