/**
 * Smooth weighted round-robin, the algorithm of nginx's upstream round-robin module: at each pick
 * every server's `current` grows by its weight, the largest `current` wins (the first on a tie)
 * and loses the total. Weights 10 and 1 give `AAAAABAAAAA`: the 10:1 share, spread out.
 *
 * The sequence is periodic (its period is the sum of the weights divided by their gcd), so it is
 * computed once per set of servers and a pick is an array read: O(1) whatever the weights.
 * Periods above {@link MAX_SCHEDULE} fall back to the live algorithm, O(servers) per pick.
 *
 * @module
 */

/** Longest precomputed schedule; beyond it picks run the live algorithm. */
export const MAX_SCHEDULE = 65_536;

/** Anything with a weight (≥ 1). */
export interface Weighted {
  readonly weight: number;
}

/**
 * One period of nginx's smooth weighted round-robin, as indices into `weights`.
 *
 * @example
 * ```ts
 * smoothWeightedSchedule([10, 1]); // [0,0,0,0,0,1,0,0,0,0,0]
 * ```
 */
export function smoothWeightedSchedule(weights: readonly number[]): Uint32Array {
  const divisor = weights.reduce(gcd, 0) || 1;
  const reduced = weights.map((w) => w / divisor);
  const period = reduced.reduce((a, b) => a + b, 0);
  const schedule = new Uint32Array(period);
  const current = new Array<number>(reduced.length).fill(0);
  for (let n = 0; n < period; n++) schedule[n] = liveStep(reduced, current, period);
  return schedule;
}

/**
 * A position in a schedule kept in shared memory, so that worker isolates serving one port
 * walk one sequence together (what nginx's `zone` does for its workers): one atomic add per pick.
 */
export interface SharedCursor {
  /** Read as unsigned: the count wraps at 2^32 like a `Uint32Array`'s. */
  readonly array: Int32Array;
  readonly index: number;
}

/**
 * Picks servers in smooth weighted round-robin order. With a {@link SharedCursor}, isolates
 * sharing it split one sequence between them; without, each keeps its own position.
 *
 * @example
 * ```ts
 * const rr = new SmoothWeightedRoundRobin([{ weight: 2 }, { weight: 1 }]);
 * rr.next(); // { weight: 2 }
 * ```
 */
export class SmoothWeightedRoundRobin<T extends Weighted> {
  readonly items: readonly T[];
  #schedule: Uint32Array | undefined;
  #position = 0;
  /** Live-algorithm state, only for periods beyond {@link MAX_SCHEDULE}. */
  #weights: number[] | undefined;
  #current: number[] | undefined;
  #total = 0;
  #cursor: SharedCursor | undefined;

  constructor(items: readonly T[], cursor?: SharedCursor) {
    this.items = items;
    this.#cursor = cursor;
    if (items.length <= 1) return;
    const weights = items.map((i) => i.weight);
    const total = weights.reduce((a, b) => a + b, 0);
    const divisor = weights.reduce(gcd, 0) || 1;
    if (total / divisor <= MAX_SCHEDULE) {
      this.#schedule = cachedSchedule(weights);
    } else {
      this.#weights = weights;
      this.#total = total;
      this.#current = new Array<number>(items.length).fill(0);
    }
  }

  /** The next item, or `undefined` when there are none. */
  next(): T | undefined {
    const items = this.items;
    if (items.length <= 1) return items[0];
    const schedule = this.#schedule;
    if (schedule !== undefined) {
      const cursor = this.#cursor;
      if (cursor !== undefined) {
        return items[
          schedule[(Atomics.add(cursor.array, cursor.index, 1) >>> 0) % schedule.length]
        ];
      }
      const index = schedule[this.#position];
      this.#position = this.#position + 1 === schedule.length ? 0 : this.#position + 1;
      return items[index];
    }
    return items[liveStep(this.#weights!, this.#current!, this.#total)];
  }
}

/**
 * Schedules are immutable and depend only on the weights, and large configs repeat a few weight
 * lists thousands of times (five servers of weight 1, say): share them.
 */
const schedules = new Map<string, Uint32Array>();
const MAX_CACHED_SCHEDULES = 4096;

function cachedSchedule(weights: readonly number[]): Uint32Array {
  const key = weights.join(",");
  let schedule = schedules.get(key);
  if (schedule === undefined) {
    if (schedules.size >= MAX_CACHED_SCHEDULES) schedules.clear();
    schedule = smoothWeightedSchedule(weights);
    schedules.set(key, schedule);
  }
  return schedule;
}

function liveStep(weights: readonly number[], current: number[], total: number): number {
  let best = -1;
  for (let i = 0; i < weights.length; i++) {
    current[i] += weights[i];
    if (best === -1 || current[i] > current[best]) best = i;
  }
  current[best] -= total;
  return best;
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}
