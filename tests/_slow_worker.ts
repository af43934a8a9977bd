/**
 * The real proxy worker, applying each config 300 ms late (as a worker busy with a huge config
 * would): what is true of a `POST /config` answer must hold however long workers take.
 *
 * @module
 */
/// <reference lib="deno.worker" />

const DELAY_MS = 300;
const passing = new WeakSet<Event>();

// Registered before the real worker's `onmessage`, so it sees each message first.
self.addEventListener("message", (event: MessageEvent<{ type?: string }>) => {
  if (event.data?.type !== "config" || passing.has(event)) return;
  event.stopImmediatePropagation();
  setTimeout(() => {
    const late = new MessageEvent("message", { data: event.data });
    passing.add(late);
    self.dispatchEvent(late);
  }, DELAY_MS);
});

await import("../src/proxy/worker.ts");
