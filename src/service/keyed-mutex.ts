/**
 * One holder at a time per key, in arrival order; holders of different keys do not wait for each
 * other. Entries exist only while a key is held or awaited, so the map does not grow with the
 * number of keys ever used.
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  /** Wait for `key`, then hold it until the returned function is called (once; later calls do nothing). */
  async acquire(key: string): Promise<() => void> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    await previous;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
  }

  /** Run `work` holding `key`; released however it ends. */
  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const release = await this.acquire(key);
    try {
      return await work();
    } finally {
      release();
    }
  }

  /** Keys currently held or awaited. */
  get size(): number {
    return this.tails.size;
  }
}
