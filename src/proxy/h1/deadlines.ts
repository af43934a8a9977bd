/**
 * Response-head deadlines of in-flight exchanges. Every exchange of a transport waits the same
 * time, so deadlines expire in the order they were set: a FIFO queue with one timer for its
 * head replaces a `setTimeout`/`clearTimeout` pair per request (measurably cheaper at tens of
 * thousands of requests a second).
 *
 * @module
 */

/** One pending deadline; `cancel()` is O(1). */
export class Deadline {
  readonly at: number;
  readonly #onExpire: () => void;
  #live = true;

  constructor(at: number, onExpire: () => void) {
    this.at = at;
    this.#onExpire = onExpire;
  }

  /** Whether it neither expired nor was cancelled. */
  get live(): boolean {
    return this.#live;
  }

  /** Forgets the deadline. */
  cancel(): void {
    this.#live = false;
  }

  /** @internal Runs the expiry once. */
  expire(): void {
    if (!this.#live) return;
    this.#live = false;
    this.#onExpire();
  }
}

/**
 * Deadlines that all lie `delayMs` after they were set.
 *
 * @example
 * ```ts
 * const deadlines = new DeadlineQueue(60_000);
 * const d = deadlines.add(() => conn.close());
 * d.cancel();
 * ```
 */
export class DeadlineQueue {
  readonly delayMs: number;
  #queue: Deadline[] = [];
  #head = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(delayMs: number) {
    this.delayMs = delayMs;
  }

  /** Calls `onExpire` in `delayMs` unless the returned deadline is cancelled first. */
  add(onExpire: () => void): Deadline {
    const deadline = new Deadline(performance.now() + this.delayMs, onExpire);
    this.#queue.push(deadline);
    if (this.#timer === undefined && !this.#closed) this.#schedule(this.delayMs);
    return deadline;
  }

  /** Stops the timer; pending deadlines never fire. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue = [];
    this.#head = 0;
  }

  #schedule(ms: number): void {
    this.#timer = setTimeout(this.#tick, Math.max(0, Math.ceil(ms)));
  }

  readonly #tick = (): void => {
    this.#timer = undefined;
    const queue = this.#queue;
    const now = performance.now();
    let head = this.#head;
    while (head < queue.length) {
      const next = queue[head];
      if (next.live && next.at > now) break;
      head++;
      next.expire();
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
