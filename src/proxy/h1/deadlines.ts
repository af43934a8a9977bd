/**
 * Deadlines that all lie the same delay after they were set (the response deadlines of a
 * transport's exchanges, a listener's header, idle and body deadlines), so they expire in the
 * order they were set: an intrusive doubly-linked list with one timer for its head replaces a
 * `setTimeout`/`clearTimeout` pair per request (measurably cheaper at tens of thousands of
 * requests a second). `cancel()` unlinks at once, so a finished exchange's deadline is garbage
 * right away and dies young (a queue that kept cancelled entries until they were compacted let
 * them live long enough to be promoted to V8's old generation: more mark-compact pauses).
 *
 * Setting a deadline reads no clock (`performance.now()` is an op, ~0.4 µs, and a request sets
 * three deadlines): while deadlines are pending, the queue's timer ticks every
 * {@link DeadlineQueue.tickMs} (an eighth of the delay, at most 1 s), and a deadline remembers the
 * tick it was set in. It expires on the first tick sure to lie a whole delay after it was set:
 * never early, at most about one tick late (nginx's timers are coarse the same way: its clock is
 * read once per event-loop turn).
 *
 * @module
 */

/**
 * What a deadline calls when it expires: a function, or an object told through
 * {@link Expiring.expired} (no closure per deadline: an idle connection holds one for minutes).
 *
 * @example
 * ```ts
 * queue.add({ expired: () => conn.close() });
 * ```
 */
export interface Expiring {
  expired(): void;
}

/**
 * One pending deadline; `cancel()` is O(1).
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
  #onExpire: (() => void) | Expiring | undefined;
  /** @internal Neighbours in the queue's list while linked. */
  prev: Deadline | null = null;
  /** @internal */
  next: Deadline | null = null;
  readonly #queue: DeadlineQueue;

  constructor(tick: number, onExpire: (() => void) | Expiring, queue: DeadlineQueue) {
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
    this.#queue.unlink(this);
  }

  /** @internal Runs the expiry once (already unlinked). */
  expire(): void {
    const onExpire = this.#onExpire;
    if (onExpire === undefined) return;
    this.#onExpire = undefined;
    if (typeof onExpire === "function") onExpire();
    else onExpire.expired();
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
  /** How often the timer runs while deadlines are pending: about the most one fires late. */
  readonly tickMs: number;
  /** Ticks after the one a deadline was set in until it expires. */
  readonly #ticks: number;
  /** Ticks so far. */
  #tick = 0;
  /** Oldest (first to expire) and newest live deadlines. */
  #first: Deadline | null = null;
  #last: Deadline | null = null;
  #size = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  /** Set while expiring: the tick arms the timer for the head once the callbacks ran. */
  #ticking = false;

  constructor(delayMs: number) {
    this.delayMs = delayMs;
    this.tickMs = Math.max(1, Math.min(1000, Math.floor(delayMs / 8)));
    // A deadline set after tick t (or when the timer started) is older than (n - t - 1) ticks at
    // tick n: ticks are at least tickMs apart (each timer is set by the previous tick), so tick
    // t + 1 + ⌈delay/tick⌉ is the first one sure to lie a whole delay after it.
    this.#ticks = 1 + Math.ceil(delayMs / this.tickMs);
  }

  /** Live deadlines held. */
  get size(): number {
    return this.#size;
  }

  /** Calls `onExpire` in `delayMs` unless the returned deadline is cancelled first. */
  add(onExpire: (() => void) | Expiring): Deadline {
    const deadline = new Deadline(this.#tick, onExpire, this);
    if (this.#closed) return deadline;
    const last = this.#last;
    deadline.prev = last;
    if (last === null) this.#first = deadline;
    else last.next = deadline;
    this.#last = deadline;
    this.#size++;
    if (this.#timer === undefined && !this.#ticking) this.#schedule();
    return deadline;
  }

  /**
   * @internal Takes a cancelled deadline out of the list. The timer stays: it stops at the first
   * tick that finds the list empty, which is cheaper than re-arming per cancel.
   */
  unlink(deadline: Deadline): void {
    const prev = deadline.prev;
    const next = deadline.next;
    if (prev === null) {
      if (this.#first !== deadline) return; // not linked (closed queue)
      this.#first = next;
    } else prev.next = next;
    if (next === null) this.#last = prev;
    else next.prev = prev;
    deadline.prev = deadline.next = null;
    this.#size--;
  }

  /** Stops the timer; pending deadlines never fire. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    let d = this.#first;
    while (d !== null) {
      const next = d.next;
      d.prev = d.next = null;
      d = next;
    }
    this.#first = this.#last = null;
    this.#size = 0;
  }

  #schedule(): void {
    this.#timer = setTimeout(this.#onTick, this.tickMs);
  }

  readonly #onTick = (): void => {
    this.#timer = undefined;
    const due = ++this.#tick - this.#ticks;
    // Callbacks may cancel or add deadlines: each round takes the current head afresh.
    this.#ticking = true;
    try {
      for (let d = this.#first; d !== null && d.tick <= due; d = this.#first) {
        this.#first = d.next;
        if (d.next === null) this.#last = null;
        else d.next.prev = null;
        d.next = null;
        this.#size--;
        d.expire();
      }
    } finally {
      this.#ticking = false;
    }
    if (this.#first !== null && !this.#closed) this.#schedule();
  };
}
