/**
 * Deadlines that all lie the same time after they were set (the response-head deadlines of a
 * transport's exchanges, a listener's header, idle and body timeouts), so they expire in the
 * order they were set: a FIFO queue with one timer replaces a `setTimeout`/`clearTimeout` pair
 * per request (measurably cheaper at tens of thousands of requests a second). Cancelled entries
 * are compacted away as they pile up, so the queue holds about as many entries as there are
 * exchanges in flight, not a timeout's worth of finished ones.
 *
 * Setting a deadline reads no clock (`performance.now()` is an op, ~0.4 µs, and a request sets
 * three deadlines): while deadlines are pending, the queue's timer ticks every
 * {@link DeadlineQueue.tickMs} (an eighth of the delay, at most 1 s), and a deadline remembers the
 * tick it was set in. It expires on the first tick that lies a whole delay after the end of that
 * tick: never early, at most about one tick late (nginx's timers are coarse the same way: its
 * clock is read once per event-loop turn).
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
  /** The queue's tick count when it was set. */
  readonly tick: number;
  #onExpire: (() => void) | undefined;
  readonly #queue: DeadlineQueue;

  constructor(tick: number, onExpire: () => void, queue: DeadlineQueue) {
    this.tick = tick;
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
  /** How often the timer runs while deadlines are pending: the most a deadline fires late. */
  readonly tickMs: number;
  /** Ticks after the one a deadline was set in until it expires. */
  readonly #ticks: number;
  /** Ticks so far. */
  #tick = 0;
  #queue: Deadline[] = [];
  #head = 0;
  #live = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  /** Set while expiring: callbacks may cancel others, and must not reshape the queue then. */
  #ticking = false;

  constructor(delayMs: number) {
    this.delayMs = delayMs;
    this.tickMs = Math.max(1, Math.min(1000, Math.floor(delayMs / 8)));
    // A deadline set just after tick t is older than (n - t - 1) ticks at tick n: ticks are at
    // least tickMs apart (each timer is set by the previous tick), so tick t + 1 + ⌈delay/tick⌉
    // is the first one sure to lie a whole delay after it.
    this.#ticks = 1 + Math.ceil(delayMs / this.tickMs);
  }

  /** Entries held, live or not (for tests). */
  get size(): number {
    return this.#queue.length - this.#head;
  }

  /** Calls `onExpire` in `delayMs` unless the returned deadline is cancelled first. */
  add(onExpire: () => void): Deadline {
    const deadline = new Deadline(this.#tick, onExpire, this);
    this.#queue.push(deadline);
    this.#live++;
    if (this.#timer === undefined && !this.#ticking && !this.#closed) this.#schedule();
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

  #schedule(): void {
    this.#timer = setTimeout(this.#onTick, this.tickMs);
  }

  readonly #onTick = (): void => {
    this.#timer = undefined;
    const due = ++this.#tick - this.#ticks;
    const queue = this.#queue;
    let head = this.#head;
    this.#ticking = true;
    try {
      while (head < queue.length) {
        const next = queue[head];
        if (next.live && next.tick > due) break;
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
    // Ticking stops when nothing is pending (callbacks may have added deadlines meanwhile).
    if (this.#live > 0 && !this.#closed) this.#schedule();
  };
}
