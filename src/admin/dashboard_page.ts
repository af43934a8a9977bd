/**
 * The dashboard (`GET /` on the admin listener): one self-contained page — markup, style and
 * script in this string, so `deno compile` ships it inside the executable and no CDN or build
 * step is involved. It polls `GET /dashboard.json` every 2 s and redraws in place.
 *
 * @module
 */

/** The page's HTML. */
export const DASHBOARD_HTML: string = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dynlb</title>
<link rel="icon" href="data:,">
<style>
  :root { --bg: #0f1419; --panel: #171e26; --line: #263140; --text: #d8dee6; --dim: #8a96a5;
    --up: #3fb950; --down: #f85149; --warn: #d29922; --accent: #58a6ff; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif;
    background: var(--bg); color: var(--text); }
  header { display: flex; align-items: baseline; gap: 24px; padding: 14px 24px;
    border-bottom: 1px solid var(--line); flex-wrap: wrap; }
  header h1 { margin: 0; font-size: 20px; letter-spacing: .5px; }
  header .meta { color: var(--dim); }
  header .meta b { color: var(--text); font-weight: 600; }
  #live { margin-left: auto; color: var(--dim); }
  #live.stale { color: var(--down); }
  #login input { background: var(--panel); color: var(--text); border: 1px solid var(--line);
    border-radius: 4px; padding: 3px 6px; }
  #login button { background: var(--accent); color: #000; border: 0; border-radius: 4px; padding: 4px 10px; }
  main { display: grid; grid-template-columns: minmax(0, 3fr) minmax(280px, 1fr); gap: 20px;
    padding: 20px 24px; }
  section { background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
    padding: 14px 16px; margin-bottom: 20px; }
  h2 { font-size: 13px; text-transform: uppercase; letter-spacing: 1px; color: var(--dim);
    margin: 0 0 10px; font-weight: 600; }
  .cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; margin-bottom: 20px; }
  .card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
  .card .v { font-size: 24px; font-weight: 600; font-variant-numeric: tabular-nums; }
  .card .k { color: var(--dim); font-size: 12px; text-transform: uppercase; letter-spacing: 1px; }
  table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
  th { text-align: left; color: var(--dim); font-weight: 500; font-size: 12px; padding: 4px 8px;
    border-bottom: 1px solid var(--line); }
  td { padding: 5px 8px; border-bottom: 1px solid #1d2530; white-space: nowrap; }
  td.num, th.num { text-align: right; }
  tr.backend td { font-weight: 600; background: #1b2430; border-top: 1px solid var(--line); }
  tr.server td:first-child { padding-left: 24px; color: var(--dim); }
  .badge { display: inline-block; min-width: 44px; text-align: center; padding: 1px 8px;
    border-radius: 10px; font-size: 12px; font-weight: 600; }
  .badge.up { background: rgba(63,185,80,.15); color: var(--up); }
  .badge.down { background: rgba(248,81,73,.15); color: var(--down); }
  .err { color: var(--down); }
  .dim { color: var(--dim); }
  .why { color: var(--dim); font-size: 12px; max-width: 260px; overflow: hidden; text-overflow: ellipsis; }
  ol.log { list-style: none; margin: 0; padding: 0; max-height: 420px; overflow: auto; }
  ol.log li { padding: 6px 0; border-bottom: 1px solid #1d2530; font-size: 13px; }
  ol.log time { color: var(--dim); font-size: 12px; margin-right: 6px; }
  .empty { color: var(--dim); font-style: italic; }
</style>
</head>
<body>
<header>
  <h1>dynlb</h1>
  <span class="meta">config <b id="cfg-version">–</b> from <b id="cfg-source">–</b>
    applied <b id="cfg-applied">–</b></span>
  <span class="meta">window <b id="window">–</b></span>
  <form id="login" hidden><input id="token" type="password" placeholder="admin token"
    autocomplete="current-password"> <button>show</button></form>
  <span id="live">connecting…</span>
</header>
<main>
  <div>
    <div class="cards">
      <div class="card"><div class="k">requests/s</div><div class="v" id="total-rps">–</div></div>
      <div class="card"><div class="k">error rate</div><div class="v" id="total-err">–</div></div>
      <div class="card"><div class="k">servers up</div><div class="v" id="servers-up">–</div></div>
      <div class="card"><div class="k">servers down</div><div class="v" id="servers-down">–</div></div>
    </div>
    <section>
      <h2>Backends and servers (last minute)</h2>
      <table>
        <thead><tr><th>backend / server</th><th>state</th><th class="num">weight</th>
          <th class="num">req/s</th><th class="num">errors</th><th class="num">p50</th>
          <th class="num">p99</th><th>last error</th></tr></thead>
        <tbody id="backends"><tr><td colspan="8" class="empty">loading…</td></tr></tbody>
      </table>
    </section>
  </div>
  <div>
    <section>
      <h2>Health changes</h2>
      <ol class="log" id="health"><li class="empty">none yet</li></ol>
    </section>
    <section>
      <h2>Config reloads</h2>
      <ol class="log" id="reloads"><li class="empty">none yet</li></ol>
    </section>
  </div>
</main>
<script>
"use strict";
(function () {
  var REFRESH_MS = 2000;
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === "text") node.textContent = attrs[k];
      else node.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { node.appendChild(c); });
    return node;
  }
  function td(text, cls) { return el("td", { text: text, class: cls || "" }); }
  function rate(v) { return v === null ? "–" : v < 10 ? v.toFixed(2) : v.toFixed(0); }
  function pct(v) { return v === null ? "–" : (v * 100).toFixed(v > 0 && v < 0.01 ? 2 : 1) + "%"; }
  function ms(v) {
    if (v === null) return "–";
    return v < 1 ? (v * 1000).toFixed(v < 0.01 ? 2 : 0) + " ms" : v.toFixed(2) + " s";
  }
  function clock(iso) { return iso ? new Date(iso).toLocaleTimeString() : "–"; }
  function figures(tr, f) {
    tr.appendChild(td(rate(f.requests_per_s), "num"));
    tr.appendChild(td(pct(f.error_rate), "num" + (f.error_rate ? " err" : "")));
    tr.appendChild(td(ms(f.p50), "num"));
    tr.appendChild(td(ms(f.p99), "num"));
  }
  function replace(id, nodes, empty) {
    var target = document.getElementById(id);
    target.replaceChildren.apply(target, nodes.length ? nodes : [el("li", { class: "empty", text: empty })]);
  }
  function render(s) {
    document.getElementById("cfg-version").textContent = s.config.version;
    document.getElementById("cfg-source").textContent = s.config.source;
    document.getElementById("cfg-applied").textContent = clock(s.config.applied_at);
    document.getElementById("window").textContent = s.window_s ? Math.round(s.window_s) + " s" : "–";
    var rows = [], up = 0, down = 0, rps = 0, errors = 0, any = false;
    s.backends.forEach(function (b) {
      var head = el("tr", { class: "backend", "data-backend": b.backend });
      head.appendChild(td(b.backend));
      head.appendChild(td(b.check === "none" ? "no active check" : b.check + " check", "dim"));
      head.appendChild(td(""));
      figures(head, b);
      head.appendChild(td(""));
      rows.push(head);
      if (b.requests_per_s !== null) {
        any = true;
        rps += b.requests_per_s;
        errors += (b.error_rate || 0) * b.requests_per_s;
      }
      b.servers.forEach(function (sv) {
        if (sv.state === "up") up++; else down++;
        var tr = el("tr", { class: "server", "data-backend": b.backend, "data-server": sv.server,
          "data-state": sv.state });
        tr.appendChild(td(sv.server));
        var state = el("td");
        state.appendChild(el("span", { class: "badge " + sv.state, text: sv.state }));
        tr.appendChild(state);
        tr.appendChild(td(String(sv.weight), "num"));
        figures(tr, sv);
        var why = td(sv.last_error || "", "why");
        if (sv.last_error) why.title = sv.last_error;
        tr.appendChild(why);
        rows.push(tr);
      });
    });
    if (rows.length === 0) rows.push(el("tr", {}, [el("td", { colspan: "8", class: "empty", text: "no backends configured" })]));
    document.getElementById("backends").replaceChildren.apply(document.getElementById("backends"), rows);
    document.getElementById("total-rps").textContent = any ? rate(rps) : "–";
    document.getElementById("total-err").textContent = any && rps > 0 ? pct(errors / rps) : "–";
    document.getElementById("servers-up").textContent = up;
    document.getElementById("servers-down").textContent = down;
    replace("health", s.health_events.slice().reverse().map(function (e) {
      return el("li", { "data-server": e.server }, [
        el("time", { text: clock(e.time) }),
        el("span", { class: "badge " + (e.up ? "up" : "down"), text: e.up ? "up" : "down" }),
        el("span", { text: " " + e.backend + " " + e.server }),
        el("div", { class: "why", text: e.reason }),
      ]);
    }), "none yet");
    replace("reloads", s.reloads.slice().reverse().map(function (r) {
      return el("li", {}, [
        el("time", { text: clock(r.time) }),
        el("span", { class: r.ok ? "" : "err", text: r.ok ? "version " + r.version + " from " + r.source : "refused from " + r.source }),
      ]);
    }), "none yet");
  }
  var live = document.getElementById("live");
  var login = document.getElementById("login");
  var TOKEN_KEY = "dynlb-admin-token";
  login.addEventListener("submit", function (event) {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value);
    login.hidden = true;
  });
  function poll() {
    var token = sessionStorage.getItem(TOKEN_KEY);
    var headers = token ? { authorization: "Bearer " + token } : {};
    fetch("dashboard.json", { cache: "no-store", headers: headers }).then(function (r) {
      // With --admin-token the data needs it: ask once, keep it for this tab only.
      if (r.status === 401) login.hidden = false;
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (s) {
      render(s);
      live.className = "";
      live.textContent = "updated " + new Date().toLocaleTimeString();
    }).catch(function (e) {
      live.className = "stale";
      live.textContent = "cannot reach dynlb (" + e.message + ")";
    }).finally(function () { setTimeout(poll, REFRESH_MS); });
  }
  poll();
})();
</script>
</body>
</html>
`;
