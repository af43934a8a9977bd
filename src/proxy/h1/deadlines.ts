/**
 * Response-head deadlines of in-flight exchanges. Every exchange of a transport waits the same
 * time, so deadlines expire in the order they were set: a FIFO queue with one timer for its
 * head replaces a `setTimeout`/`clearTimeout` pair per request (measurably cheaper at tens of
 * thousands of requests a second). Cancelled entries are compacted away as they pile up, so the
 * queue holds about as many entries as there are exchanges in flight, not a timeout's worth of
 * finished ones.
 *
 * @module
 */

/**
 * One pending deadline; `cancel()` is O(1) amortised.
 *
 * @example
 * ```ts
 * const deadline = queue.add(() => conn.close());
 * deadline.cancel();
 * ```
 */
export class Deadline {
  readonly at: number;
  #onExpire: (() => void) | undefined;
  readonly #queue: DeadlineQueue;

  constructor(at: number, onExpire: () => void, queue: DeadlineQueue) {
    this.at = at;
    this.#onExpire = onExpire;
    this.#queue = queue;
  }

  /** Whether it neither expired nor was cancelled. */
  get live(): boolean {
    return this.#onExpire !== undefined;
  }

  /** Forgets the deadline (and what it would have called, so that can be collected). */
  cancel(): void {
    if (this.#onExpire === undefined) return;
    this.#onExpire = undefined;
    this.#queue.cancelled();
  }

  /** @internal Runs the expiry once. */
  expire(): void {
    const onExpire = this.#onExpire;
    if (onExpire === undefined) return;
    this.#onExpire = undefined;
    onExpire();
  }
}

/**
 * Deadlines that all lie `delayMs` after they were set.
 *
 * @example
 * ```ts
 * const deadlines = new DeadlineQueue(60_000);
 * const d = deadlines.add(() => console.log("too late"));
 * d.cancel();
 * deadlines.close();
 * ```
 */
export class DeadlineQueue {
  readonly delayMs: number;
  #queue: Deadline[] = [];
  #head = 0;
  #live = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  /** Set while expiring: callbacks may cancel others, and must not reshape the queue then. */
  #ticking = false;

  constructor(delayMs: number) {
    this.delayMs = delayMs;
  }

  /** Entries held, live or not (for tests). */
  get size(): number {
    return this.#queue.length - this.#head;
  }

  /** Calls `onExpire` in `delayMs` unless the returned deadline is cancelled first. */
  add(onExpire: () => void): Deadline {
    const deadline = new Deadline(performance.now() + this.delayMs, onExpire, this);
    this.#queue.push(deadline);
    this.#live++;
    if (this.#timer === undefined && !this.#closed) this.#schedule(this.delayMs);
    return deadline;
  }

  /** @internal A deadline was cancelled: compact once dead entries dominate. */
  cancelled(): void {
    this.#live--;
    const held = this.#queue.length - this.#head;
    if (!this.#ticking && held > 1024 && held > 4 * this.#live) {
      this.#queue = this.#queue.slice(this.#head).filter((d) => d.live);
      this.#head = 0;
    }
  }

  /** Stops the timer; pending deadlines never fire. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue = [];
    this.#head = 0;
    this.#live = 0;
  }

  #schedule(ms: number): void {
    this.#timer = setTimeout(this.#tick, Math.max(0, Math.ceil(ms)));
  }

  readonly #tick = (): void => {
    this.#timer = undefined;
    const queue = this.#queue;
    const now = performance.now();
    let head = this.#head;
    this.#ticking = true;
    try {
      while (head < queue.length) {
        const next = queue[head];
        if (next.live && next.at > now) break;
        head++;
        if (next.live) {
          this.#live--;
          next.expire();
        }
      }
    } finally {
      this.#ticking = false;
    }
    if (head === queue.length) {
      queue.length = 0;
      head = 0;
    } else if (head > 4096) {
      queue.splice(0, head);
      head = 0;
    }
    this.#head = head;
    if (head < queue.length && !this.#closed) this.#schedule(queue[head].at - now);
  };
}
