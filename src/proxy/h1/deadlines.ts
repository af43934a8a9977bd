/**
 * Deadlines that all lie the same delay after they were set (the response deadlines of a
 * transport's exchanges, a listener's header, idle and body deadlines), so they expire in the
 * order they were set: an intrusive doubly-linked list with one timer for its head replaces a
 * `setTimeout`/`clearTimeout` pair per request (measurably cheaper at tens of thousands of
 * requests a second). `cancel()` unlinks at once, so a finished exchange's deadline is garbage
 * right away and dies young (a queue that kept cancelled entries until they were compacted let
 * them live long enough to be promoted to V8's old generation: more mark-compact pauses).
 *
 * @module
 */

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
  readonly at: number;
  #onExpire: (() => void) | undefined;
  /** @internal Neighbours in the queue's list while linked. */
  prev: Deadline | null = null;
  /** @internal */
  next: Deadline | null = null;
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
    this.#queue.unlink(this);
  }

  /** @internal Runs the expiry once (already unlinked). */
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
  }

  /** Live deadlines held. */
  get size(): number {
    return this.#size;
  }

  /** Calls `onExpire` in `delayMs` unless the returned deadline is cancelled first. */
  add(onExpire: () => void): Deadline {
    const deadline = new Deadline(performance.now() + this.delayMs, onExpire, this);
    if (this.#closed) return deadline;
    const last = this.#last;
    deadline.prev = last;
    if (last === null) this.#first = deadline;
    else last.next = deadline;
    this.#last = deadline;
    this.#size++;
    if (this.#timer === undefined && !this.#ticking) this.#schedule(this.delayMs);
    return deadline;
  }

  /**
   * @internal Takes a cancelled deadline out of the list. The timer stays: when it fires early
   * (its deadline went) it re-arms for the new head, which is cheaper than re-arming per cancel.
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

  #schedule(ms: number): void {
    this.#timer = setTimeout(this.#tick, Math.max(0, Math.ceil(ms)));
  }

  readonly #tick = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    // Callbacks may cancel or add deadlines: each round takes the current head afresh.
    this.#ticking = true;
    try {
      for (let d = this.#first; d !== null && d.at <= now; d = this.#first) {
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
    const first = this.#first;
    if (first !== null && !this.#closed) this.#schedule(first.at - now);
  };
}
