import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { KeyedMutex } from '../../src/service/keyed-mutex.js';

test('holders of one key run one at a time, in arrival order', async () => {
  const mutex = new KeyedMutex();
  const events: string[] = [];
  let inside = 0;
  const job = (name: string, ms: number) =>
    mutex.run('a', async () => {
      inside++;
      assert.equal(inside, 1, `${name} ran beside another holder`);
      events.push(`${name} in`);
      await sleep(ms);
      events.push(`${name} out`);
      inside--;
      return name;
    });
  // The first holder is the slowest: order must follow arrival, not duration.
  const results = await Promise.all([job('first', 30), job('second', 1), job('third', 10)]);
  assert.deepEqual(results, ['first', 'second', 'third']);
  assert.deepEqual(events, ['first in', 'first out', 'second in', 'second out', 'third in', 'third out']);
});

test('different keys do not wait for each other', async () => {
  const mutex = new KeyedMutex();
  const releaseA = await mutex.acquire('a');
  // Would hang if "b" queued behind the held "a".
  assert.equal(await mutex.run('b', async () => 'b ran'), 'b ran');
  releaseA();
});

test('a holder that throws releases the key, and the error reaches its caller', async () => {
  const mutex = new KeyedMutex();
  const failing = mutex.run('a', async () => {
    await sleep(5);
    throw new Error('boom');
  });
  const next = mutex.run('a', async () => 'next ran');
  await assert.rejects(failing, /boom/);
  assert.equal(await next, 'next ran');
  assert.equal(mutex.size, 0);
});

test('no entry is left once every holder is done, whatever the interleaving', async () => {
  const mutex = new KeyedMutex();
  const jobs: Promise<unknown>[] = [];
  for (let i = 0; i < 200; i++) {
    const key = `gun-${i % 7}`;
    jobs.push(
      mutex
        .run(key, async () => {
          if (i % 3 === 0) await sleep(i % 5);
          if (i % 11 === 0) throw new Error(`job ${i}`);
        })
        .catch(() => {}),
    );
  }
  assert.ok(mutex.size > 0 && mutex.size <= 7);
  await Promise.all(jobs);
  assert.equal(mutex.size, 0);
});

test('releasing twice is harmless: it does not let a later holder in early', async () => {
  const mutex = new KeyedMutex();
  const release1 = await mutex.acquire('a');
  const second = mutex.acquire('a');
  const third = mutex.acquire('a');
  release1();
  const release2 = await second;
  release1(); // stale: must not release the second holder's turn
  let thirdIn = false;
  void third.then(() => (thirdIn = true));
  await sleep(5);
  assert.equal(thirdIn, false);
  release2();
  (await third)();
  assert.equal(mutex.size, 0);
});
