// KDSS console: the little JavaScript the pages need, embedded in the binary. Every call
// goes to the JSON API under /api/ with the session cookie (same origin) and, when it
// changes something, the CSRF token the page carries in <meta name="csrf-token">.
"use strict";

function csrf() {
  const m = document.querySelector('meta[name="csrf-token"]');
  return m ? m.content : "";
}

async function api(method, url, body) {
  const opts = { method, headers: { "X-CSRF-Token": csrf() }, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(url, opts);
  let data = null;
  try { data = await r.json(); } catch (e) { data = { error: r.statusText }; }
  if (r.status === 401 && !url.endsWith("/login")) { location.href = "/login"; }
  return { ok: r.ok, status: r.status, data };
}

function show(el, ok, text) {
  if (!el) { if (!ok) alert(text); return; }
  el.className = "result " + (ok ? "ok" : "error");
  el.textContent = text;
}

function formBody(form) {
  const body = {};
  for (const el of form.querySelectorAll("input[name], select[name]")) body[el.name] = el.value;
  return body;
}

function wireLogin() {
  const f = document.getElementById("login");
  if (!f) return;
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await api("POST", "/api/login", formBody(f));
    if (r.ok) { location.href = "/"; }
    else { show(document.getElementById("login-result"), false, r.data.error || "sign-in failed"); }
  });
}

function wireActions() {
  for (const f of document.querySelectorAll("form[data-api]")) {
    f.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const out = f.querySelector(".result");
      const r = await api(f.dataset.method || "POST", f.dataset.api, formBody(f));
      if (!r.ok) { show(out, false, r.data.error || ("failed: " + r.status)); return; }
      if (f.dataset.showSecret) {
        out.className = "result ok";
        out.innerHTML = "";
        out.append("Created " + r.data.name + " (" + r.data.role + "). Access key ");
        const ak = document.createElement("span"); ak.className = "secret"; ak.id = "new-access-key"; ak.textContent = r.data.access_key;
        const sk = document.createElement("span"); sk.className = "secret"; sk.id = "new-secret-key"; sk.textContent = r.data.secret_key;
        out.append(ak, " secret key ", sk, " — shown once, copy it now.");
        return;
      }
      if (f.dataset.reload) location.reload(); else show(out, true, "done");
    });
  }
  for (const b of document.querySelectorAll("button[data-api]")) {
    b.addEventListener("click", async () => {
      if (b.dataset.confirm && !confirm(b.dataset.confirm)) return;
      const body = b.dataset.body ? JSON.parse(b.dataset.body) : undefined;
      const r = await api(b.dataset.method || "POST", b.dataset.api, body);
      const out = document.getElementById("page-result");
      if (r.ok) location.reload(); else show(out, false, r.data.error || ("failed: " + r.status));
    });
  }
  const out = document.getElementById("logout");
  if (out) out.addEventListener("click", async () => { await api("POST", "/api/logout"); location.href = "/login"; });
}

function fmtBytes(n) {
  const u = ["B/s", "KiB/s", "MiB/s", "GiB/s"]; let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + " " + u[i];
}

function draw(id, values, label) {
  const svg = document.getElementById(id);
  if (!svg) return;
  const peak = values.length ? Math.max(...values) : 0;
  const max = Math.max(1, peak);
  const n = Math.max(values.length - 1, 1);
  const pts = values.map((v, i) => (i * 400 / n).toFixed(1) + "," + (115 - v * 110 / max).toFixed(1)).join(" ");
  svg.innerHTML = '<polyline points="' + pts + '"></polyline>';
  const l = document.getElementById(id + "-label");
  if (l) l.textContent = label(values.length ? values[values.length - 1] : 0) + " now, peak " + label(peak) + " (last " + values.length + " samples)";
}

async function refreshDashboard() {
  if (!document.getElementById("health")) return;
  const r = await api("GET", "/api/rates");
  if (r.ok) {
    draw("chart-throughput", r.data.map((p) => p.bytes_per_sec), fmtBytes);
    draw("chart-iops", r.data.map((p) => p.iops), (v) => v.toFixed(0) + " IOPS");
  }
  const o = await api("GET", "/api/overview");
  if (o.ok) {
    const h = document.getElementById("health");
    h.textContent = o.data.health.level;
    h.className = "health " + o.data.health.level.toLowerCase();
    const ul = document.getElementById("health-reasons");
    ul.innerHTML = "";
    for (const why of o.data.health.reasons) { const li = document.createElement("li"); li.textContent = why; ul.append(li); }
    document.getElementById("nodes-count").textContent = o.data.nodes_online + "/" + o.data.nodes_total;
    document.getElementById("disks-count").textContent = o.data.disks_active + "/" + o.data.disks_total;
  }
}

function localTimes() {
  for (const td of document.querySelectorAll("td.time[data-ms]")) {
    td.textContent = new Date(Number(td.dataset.ms)).toISOString().replace("T", " ").slice(0, 19);
  }
}

wireLogin();
wireActions();
localTimes();
if (document.getElementById("health")) { refreshDashboard(); setInterval(refreshDashboard, 3000); }
