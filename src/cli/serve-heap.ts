/**
 * How the server's JavaScript heap grows. After each full collection V8 lets the old
 * generation grow to a multiple of what survived (up to 4x on a fast machine) before it collects
 * again; under a write load the server's heap then held two to three times its live data in
 * garbage (measured: 44 MB live, 100 MB used before the next collection), which is resident
 * memory for nothing. A fixed, smaller factor collects sooner: more frequent, shorter full
 * collections for a heap that stays near its live size. The factor is read at every collection,
 * so setting it once the process runs takes effect (unlike the young generation's size, which is
 * fixed at start: `npm start` passes --max-semi-space-size, see docs/operations.md).
 */
import v8 from 'node:v8';

/** The old generation may grow by this share of what survived the last full collection. */
export const HEAP_GROWING_PERCENT = 30;

export function tuneServerHeap(): void {
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
