/**
 * The health checker of the control plane: active check loops per target, passive failure
 * detection per (backend, server), and the per-backend view the data plane and `GET /status`
 * read.
 *
 * Behaviour, in one place:
 * - **Targets.** A target is one server (`addr:port` key) under one check definition (type,
 *   uri, interval, timeout, success, fail). A server listed by several backends with the same
 *   definition is one target: one loop, one state, seen by every such backend. Backends whose
 *   `health_check` is absent or has `enable: false` have no active check.
 * - **Start.** Servers start up. A new target's first check runs at a random point within its
 *   first interval, so 10,000 servers added at once are spread over the interval instead of
 *   probed together (`random: () => 0` in the options checks at once, for tests).
 * - **Schedule.** The next check of a target is scheduled `interval` after the previous one
 *   finished: checks of one target never overlap, and the effective period is `interval` plus
 *   the probe's duration (at most `interval + timeout`). Targets run concurrently.
 * - **Reconfiguring (`update`).** Targets whose definition is unchanged keep their loop and
 *   state. A changed definition is a new target; when the probe itself is unchanged (same
 *   server, type and uri — only interval, timeout or thresholds differ) it carries the old
 *   state and counters over, and the new thresholds apply from its next check. A new probe of a
 *   server that already had another probe starts in that server's current up/down state with
 *   counters at zero (a new config does not send traffic to a server known dead); otherwise it
 *   starts up. Removed targets stop at once (timer cleared, in-flight probe aborted).
 *   Kept (backend, server) pairs whose state changes because of the new config are reported
 *   through `onChange` with reason `"config changed"`; new pairs are not reported (read
 *   `down()` after `update()` when compiling the new snapshot).
 * - **Passive detection** (nginx `max_fails`/`fail_timeout`; defaults 1 and 10 s; `max_fails`
 *   0 disables): `reportFailure` counts connection failures of a server per backend; `max_fails`
 *   of them within `fail_timeout` seconds take the server down for that backend only, unless it
 *   is the last server up in that backend (nginx never marks a lone server unavailable). With an
 *   active check, the server comes back after `success` consecutive passing checks counted from
 *   that moment; without one, after a cool-down of `fail_timeout` seconds. Failures reported
 *   for a server that is already down are ignored.
 * - **Reporting.** `onChange` is called once per (backend, server) state change, and each
 *   change is logged once (`warn` for down, `info` for up); single checks are never logged.
 *
 * @module
 */
import { upstreamOf } from "../balance/upstream.ts";
import { PASSIVE_CHECK_DEFAULTS } from "../config/schema.ts";
import type { DownServer } from "../config/snapshot.ts";
import type { BackendConfig, HealthCheckConfig } from "../config/types.ts";
import { log } from "../log.ts";
import { type CheckDefinition, CheckLoop } from "./loop.ts";
import { CheckState } from "./state.ts";
import type { BackendStatus, HealthChange, ServerStatus } from "./types.ts";

/** Options of {@linkcode HealthChecker}. */
export interface HealthCheckerOptions {
  /** Clock (ms since the epoch) for status times and passive windows; `Date.now` by default. */
  readonly now?: () => number;
  /** Source in [0, 1) of the first-check spread; `Math.random` by default. */
  readonly random?: () => number;
}

interface Target {
  readonly key: string;
  readonly server: string;
  readonly loop: CheckLoop;
  members: Member[];
}

/** One server as one backend sees it. */
class Member {
  readonly backend: string;
  readonly server: string;
  weight = 1;
  target: Target | null = null;
  maxFails: number = PASSIVE_CHECK_DEFAULTS.max_fails;
  failTimeoutMs: number = PASSIVE_CHECK_DEFAULTS.fail_timeout * 1000;
  /** The state last reported for this backend. */
  up = true;
  lastChange: number | null = null;
  passiveDown = false;
  /** Passing active checks since the passive failure took it down. */
  passivePasses = 0;
  /** Times of recent passive failures, oldest first (at most `maxFails`). */
  failTimes: number[] = [];
  passiveError: string | null = null;
  passiveErrorAt: number | null = null;
  coolDown: ReturnType<typeof setTimeout> | undefined;

  constructor(backend: string, server: string) {
    this.backend = backend;
    this.server = server;
  }
}

interface BackendEntry {
  readonly name: string;
  readonly check: "tcp" | "http" | "none";
  readonly members: Member[];
}

/**
 * Runs active checks and passive detection for a configuration's backends.
 *
 * @example
 * ```ts
 * const checker = new HealthChecker((c) => dataPlane.setHealth(c.backend, c.server, c.up));
 * checker.update(config.backends);
 * const snapshot = compileSnapshot(config, version, checker.down());
 * // later, from the data plane:
 * checker.reportFailure("backend1", "127.0.0.1:10001", "connection refused");
 * await checker.close();
 * ```
 */
export class HealthChecker {
  #onChange: (change: HealthChange) => void;
  #now: () => number;
  #random: () => number;
  #targets = new Map<string, Target>();
  #members = new Map<string, Member>();
  #backends: BackendEntry[] = [];
  #backendByName = new Map<string, BackendEntry>();
  /** Stops of removed targets whose probe has not let go yet (awaited by `close`). */
  #draining = new Set<Promise<void>>();
  #closed = false;

  constructor(onChange: (change: HealthChange) => void, options: HealthCheckerOptions = {}) {
    this.#onChange = onChange;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
  }

  /**
   * Reconciles with a new configuration's backends (see the module docs for what is kept).
   *
   * @example
   * ```ts
   * checker.update(config.backends);
   * ```
   */
  update(backends: readonly BackendConfig[]): void {
    if (this.#closed) return;
    const oldTargets = this.#targets;
    const oldMembers = this.#members;
    const targets = new Map<string, Target>();
    const members = new Map<string, Member>();
    const entries: BackendEntry[] = [];
    const created: Target[] = [];
    let byServer: Map<string, Target[]> | undefined;

    for (const b of backends) {
      const hc = b.health_check?.enable ? b.health_check : undefined;
      const pc = b.passive_check ?? PASSIVE_CHECK_DEFAULTS;
      const entry: BackendEntry = { name: b.backend_name, check: hc?.type ?? "none", members: [] };
      entries.push(entry);
      for (const s of b.servers) {
        const server = upstreamOf(s.addr, s.port, s.weight).key;
        const mkey = memberKey(b.backend_name, server);
        if (members.has(mkey)) continue;
        let target: Target | null = null;
        if (hc) {
          const tkey = targetKey(server, hc);
          target = targets.get(tkey) ?? null;
          if (target === null) {
            target = oldTargets.get(tkey) ?? null;
            if (target !== null) {
              target.members = [];
            } else {
              byServer ??= indexByServer(oldTargets);
              target = this.#createTarget(tkey, server, s.addr, s.port, hc, byServer);
              created.push(target);
            }
            targets.set(tkey, target);
          }
        }
        const old = oldMembers.get(mkey);
        const member = old ?? new Member(b.backend_name, server);
        member.weight = s.weight;
        member.target = target;
        member.maxFails = pc.max_fails;
        member.failTimeoutMs = pc.fail_timeout * 1000;
        target?.members.push(member);
        members.set(mkey, member);
        entry.members.push(member);
      }
    }

    for (const [key, target] of oldTargets) {
      if (!targets.has(key)) this.#stopTarget(target);
    }
    for (const [key, member] of oldMembers) {
      if (!members.has(key)) clearCoolDown(member);
    }
    this.#targets = targets;
    this.#members = members;
    this.#backends = entries;
    this.#backendByName = new Map(entries.map((e) => [e.name, e]));

    for (const [key, member] of members) this.#reconcile(member, oldMembers.has(key));
    for (const target of created) {
      target.loop.start(this.#random() * target.loop.definition.intervalMs);
    }
  }

  /**
   * Counts a connection failure to `server` (its `addr:port` key) seen by the data plane while
   * proxying for `backend`, at `at` (ms since the epoch; now by default); unknown pairs and
   * servers already down are ignored. The window is measured at the failures' own times: a
   * worker's report can arrive late (a loaded machine), and reports of several workers out of
   * order; one older than `fail_timeout` when it arrives does not count.
   *
   * @example
   * ```ts
   * checker.reportFailure("backend1", "127.0.0.1:10001", "connection refused");
   * ```
   */
  reportFailure(backend: string, server: string, reason: string, at?: number): void {
    const m = this.#members.get(memberKey(backend, server));
    if (m === undefined || m.maxFails === 0 || !m.up) return;
    const now = this.#now();
    const failedAt = Math.min(at ?? now, now);
    if (m.passiveErrorAt === null || failedAt >= m.passiveErrorAt) {
      m.passiveError = reason;
      m.passiveErrorAt = failedAt;
    }
    const times = m.failTimes;
    const since = now - m.failTimeoutMs;
    while (times.length > 0 && times[0] <= since) times.shift();
    if (failedAt <= since) return;
    let i = times.length;
    while (i > 0 && times[i - 1] > failedAt) i--;
    times.splice(i, 0, failedAt);
    if (times.length < m.maxFails) return;
    // As nginx does, passive failures never take out the last server up: with one server
    // left, a 503 for fail_timeout seconds is worse than trying it (a restarted backend then
    // answers at once). Active checks still can.
    const entry = this.#backendByName.get(backend);
    if (entry !== undefined && entry.members.filter((x) => x.up).length <= 1) return;
    const count = times.length;
    m.failTimes = [];
    m.passiveDown = true;
    m.passivePasses = 0;
    if (m.target === null) this.#startCoolDown(m);
    const plural = count === 1 ? "" : "s";
    this.#settle(
      m,
      `passive: ${count} failure${plural} in ${m.failTimeoutMs / 1000}s: ${reason}`,
    );
  }

  /**
   * Every backend in config order with every server's state, for `GET /status`.
   *
   * @example
   * ```ts
   * const body = JSON.stringify(checker.status());
   * ```
   */
  status(): BackendStatus[] {
    const now = this.#now();
    return this.#backends.map((e) => ({
      backend: e.name,
      check: e.check,
      servers: e.members.map((m) => serverStatus(m, now)),
    }));
  }

  /**
   * The servers currently down, per backend (for compiling a snapshot).
   *
   * @example
   * ```ts
   * compileSnapshot(config, version, checker.down());
   * ```
   */
  down(): DownServer[] {
    const down: DownServer[] = [];
    for (const e of this.#backends) {
      for (const m of e.members) if (!m.up) down.push({ backend: m.backend, server: m.server });
    }
    return down;
  }

  /**
   * Stops every loop and timer; resolves once in-flight probes have closed their connections.
   * `update` and `reportFailure` do nothing afterwards.
   *
   * @example
   * ```ts
   * await checker.close();
   * ```
   */
  async close(): Promise<void> {
    this.#closed = true;
    for (const target of this.#targets.values()) this.#stopTarget(target);
    for (const member of this.#members.values()) clearCoolDown(member);
    this.#targets = new Map();
    this.#members = new Map();
    this.#backends = [];
    this.#backendByName.clear();
    await Promise.all(this.#draining);
  }

  #createTarget(
    key: string,
    server: string,
    addr: string,
    port: number,
    hc: HealthCheckConfig,
    byServer: Map<string, Target[]>,
  ): Target {
    const definition: CheckDefinition = {
      type: hc.type,
      uri: hc.type === "http" ? hc.uri ?? "/" : "",
      intervalMs: hc.interval * 1000,
      timeoutMs: hc.timeout * 1000,
      success: hc.success,
      fail: hc.fail,
    };
    const state = initialState(byServer.get(server), definition);
    const target: Target = {
      key,
      server,
      members: [],
      loop: new CheckLoop(addr, port, definition, state, (ok, change, error) => {
        this.#onCheck(target, ok, change !== null, error);
      }, this.#now),
    };
    return target;
  }

  #onCheck(target: Target, ok: boolean, changed: boolean, error: string | undefined): void {
    const { state, definition: d } = target.loop;
    for (const m of target.members) {
      let passes = state.passes;
      if (m.passiveDown) {
        if (!ok) m.passivePasses = 0;
        else if (++m.passivePasses >= d.success) m.passiveDown = false;
        passes = m.passivePasses;
      } else if (!changed) {
        continue;
      }
      const reason = ok
        ? `${passes} passed ${d.type} checks`
        : `${state.failures} failed ${d.type} checks: ${error}`;
      this.#settle(m, reason);
    }
  }

  /** Brings a kept or new member in line with its (possibly new) target and passive config. */
  #reconcile(m: Member, kept: boolean): void {
    if (m.maxFails === 0) {
      m.failTimes = [];
      m.passiveDown = false;
    } else if (m.failTimes.length > m.maxFails) {
      m.failTimes = m.failTimes.slice(-m.maxFails);
    }
    if (!m.passiveDown || m.target !== null) clearCoolDown(m);
    else if (m.coolDown === undefined) this.#startCoolDown(m);
    if (kept) {
      this.#settle(m, "config changed");
    } else {
      m.up = effectiveUp(m);
      if (!m.up) m.lastChange = m.target?.loop.state.lastChange ?? null;
    }
  }

  #startCoolDown(m: Member): void {
    m.coolDown = setTimeout(() => {
      m.coolDown = undefined;
      if (!m.passiveDown) return;
      m.passiveDown = false;
      this.#settle(m, "cool-down over");
    }, m.failTimeoutMs);
  }

  /** Reports the member's state if it differs from the last one reported. */
  #settle(m: Member, reason: string): void {
    const up = effectiveUp(m);
    if (up === m.up) return;
    m.up = up;
    m.lastChange = this.#now();
    const fields = { backend: m.backend, server: m.server, reason };
    log(up ? "info" : "warn", up ? "server up" : "server down", fields);
    try {
      this.#onChange({ backend: m.backend, server: m.server, up, reason });
    } catch (err) {
      log("error", "health change listener failed", { error: String(err) });
    }
  }

  #stopTarget(target: Target): void {
    const stopped = target.loop.stop();
    this.#draining.add(stopped);
    stopped.finally(() => this.#draining.delete(stopped));
  }
}

function memberKey(backend: string, server: string): string {
  return `${backend}\n${server}`;
}

function targetKey(server: string, hc: HealthCheckConfig): string {
  const uri = hc.type === "http" ? hc.uri ?? "/" : "";
  return `${server} ${hc.type} ${uri} ${hc.interval} ${hc.timeout} ${hc.success} ${hc.fail}`;
}

function indexByServer(targets: ReadonlyMap<string, Target>): Map<string, Target[]> {
  const index = new Map<string, Target[]>();
  for (const t of targets.values()) {
    const list = index.get(t.server);
    if (list) list.push(t);
    else index.set(t.server, [t]);
  }
  return index;
}

/** See the module docs: same probe → carry everything; other probe → carry up/down only. */
function initialState(previous: readonly Target[] | undefined, d: CheckDefinition): CheckState {
  if (previous === undefined) return new CheckState();
  const same = previous.find((t) =>
    t.loop.definition.type === d.type && t.loop.definition.uri === d.uri
  );
  if (same !== undefined) return same.loop.state.clone();
  const state = new CheckState();
  const down = previous.find((t) => t.loop.state.state === "down");
  if (down !== undefined) {
    state.state = "down";
    state.lastChange = down.loop.state.lastChange;
  }
  return state;
}

function effectiveUp(m: Member): boolean {
  return !m.passiveDown && (m.target === null || m.target.loop.state.state === "up");
}

function clearCoolDown(m: Member): void {
  if (m.coolDown !== undefined) clearTimeout(m.coolDown);
  m.coolDown = undefined;
}

function serverStatus(m: Member, now: number): ServerStatus {
  const s = m.target?.loop.state;
  const activeErrorAt = s?.lastErrorAt ?? null;
  const passiveNewer = m.passiveErrorAt !== null &&
    (activeErrorAt === null || m.passiveErrorAt >= activeErrorAt);
  const since = now - m.failTimeoutMs;
  return {
    server: m.server,
    state: m.up ? "up" : "down",
    weight: m.weight,
    passes: s?.passes ?? 0,
    // Without active checks, the failures shown are the passive ones in the current window.
    failures: s?.failures ?? m.failTimes.filter((t) => t > since).length,
    last_check: iso(s?.lastCheck ?? null),
    last_error: passiveNewer ? m.passiveError : s?.lastError ?? null,
    last_change: iso(m.lastChange),
  };
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}
