// keytrail dashboard: a small single-page app over /api/v1 with the
// session cookie. Every value from the API is written as text
// (textContent), never parsed as HTML. No secret ever reaches it: the
// API serves redacted forms only.
"use strict";

const SEVERITIES = ["critical", "high", "medium", "low", "info"];
const STATUSES = ["open", "acknowledged", "false_positive", "accepted_risk", "revoked", "fixed"];
let me = null;

// h("td", {class: "x"}, "text", child…): an element, children as text or nodes.
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

function toast(text) {
  const t = document.getElementById("toast");
  t.textContent = text;
  t.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove("show"), 2500);
}

async function api(path, options = {}) {
  const init = { credentials: "same-origin", headers: { Accept: "application/json" }, ...options };
  if (options.body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.headers["X-CSRF-Token"] = me ? me.csrf : "";
    init.body = JSON.stringify(options.body);
  }
  const r = await fetch("/api/v1" + path, init);
  if (r.status === 401) {
    location.href = "/login";
    throw new Error("not logged in");
  }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    const e = new Error((body.error && body.error.message) || r.statusText);
    e.status = r.status;
    throw e;
  }
  return body;
}

const sev = (s) => h("span", { class: "sev " + s }, s);
const badge = (s, cls) => h("span", { class: "badge " + (cls || s) }, String(s).replace(/_/g, " "));
const when = (t) => (t ? t.replace("T", " ").replace(/\.\d+Z$/, "Z").replace(/:\d\dZ$/, "Z") : "—");
const day = (t) => (t ? t.slice(0, 10) : "—");
const canTriage = () => me && (me.role === "triager" || me.role === "admin");
const fpLink = (f, text) => h("a", { href: "#/finding/" + f.fingerprint, class: text ? null : "mono" }, text || f.fingerprint.slice(0, 12));

function table(columns, rows, empty, headless) {
  if (!rows.length) return h("div", { class: "table-wrap" }, h("div", { class: "empty" }, empty || "Nothing here."));
  return h("div", { class: "table-wrap" },
    h("table", { class: headless ? "headless" : null },
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.num ? "num" : null }, c.title)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, columns.map((c) => h("td", { class: c.cls || (c.num ? "num" : null) }, c.cell(r))))))));
}

function page(title, sub, ...kids) {
  const main = document.getElementById("main");
  main.replaceChildren(h("div", { class: "page-head" }, h("h1", {}, title), sub ? h("span", { class: "sub" }, sub) : null), ...kids.filter(Boolean));
}

function failed(e) {
  page("Something went wrong", null, h("p", { class: "error" }, e.message));
}

// A line chart of `points` ([{at, total}]) as inline SVG.
function chart(points) {
  const W = 600, H = 180, P = 28;
  const max = Math.max(1, ...points.map((p) => p.total));
  const x = (i) => P + (points.length < 2 ? (W - 2 * P) / 2 : (i * (W - 2 * P)) / (points.length - 1));
  const y = (v) => H - P + 4 - (v / max) * (H - 2 * P);
  const ns = "http://www.w3.org/2000/svg";
  const s = (tag, attrs, text) => {
    const el = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    return el;
  };
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "trend" });
  svg.append(s("line", { class: "axis", x1: P, y1: y(0), x2: W - P, y2: y(0) }));
  svg.append(s("text", { x: 2, y: y(max) + 4 }, String(max)));
  svg.append(s("text", { x: 2, y: y(0) + 4 }, "0"));
  const pts = points.map((p, i) => `${x(i)},${y(p.total)}`).join(" ");
  if (points.length) {
    svg.append(s("polygon", { class: "area", points: `${x(0)},${y(0)} ${pts} ${x(points.length - 1)},${y(0)}` }));
    svg.append(s("polyline", { class: "line", points: pts }));
    points.forEach((p, i) => {
      const dot = s("circle", { cx: x(i), cy: y(p.total), r: 3, class: "dot" });
      dot.append(s("title", {}, `${when(p.at)}: ${p.total}`));
      svg.append(dot);
    });
    // Dates, or times when the points span one day.
    const label = day(points[0].at) === day(points[points.length - 1].at) ? when : day;
    svg.append(s("text", { x: P, y: H - 4 }, label(points[0].at)));
    svg.append(s("text", { x: W - P, y: H - 4, "text-anchor": "end" }, label(points[points.length - 1].at)));
  }
  return h("div", { class: "chart" }, svg);
}

function breakdown(map) {
  const entries = Object.entries(map || {}).sort((a, b) => b[1] - a[1]);
  const max = Math.max(1, ...entries.map((e) => e[1]));
  return table(
    [
      { title: "", cell: (e) => e[0] },
      { title: "", cls: "bar-cell", cell: (e) => h("div", { class: "bar", style: null, "data-w": e[1] / max }) },
      { title: "", num: true, cell: (e) => e[1] },
    ],
    entries,
    "None.",
    true,
  );
}

// Bars get their width from data-w after insertion (CSP forbids inline styles in markup, not in the CSSOM).
function sizeBars() {
  document.querySelectorAll(".bar[data-w]").forEach((b) => (b.style.width = Math.max(2, b.dataset.w * 100) + "%"));
}

async function overview() {
  const [trend, open, alerts, exposure] = await Promise.all([
    api("/trends"),
    api("/findings?kind=secret&status=open,acknowledged&limit=1000"),
    api("/alerts?status=open,acknowledged&order=newest&limit=8"),
    api("/exposure?order=newest&limit=8"),
  ]);
  const now = trend.points[trend.points.length - 1] || { total: 0, by_owner: {}, by_environment: {} };
  const first = trend.points[0] || now;
  const crit = open.findings.filter((f) => f.severity === "critical" || f.severity === "high").length;
  const live = open.findings.filter((f) => f.verification && f.verification.status === "live").length;
  const delta = now.total - first.total;
  page("Overview", "open, live, long-lived secrets and what happened to them",
    h("div", { class: "cards" },
      h("div", { class: "card high" }, h("div", { class: "n", id: "kpi-long-lived" }, now.total), h("div", { class: "l" }, "open long-lived secrets"),
        h("div", { class: "small muted" }, (delta > 0 ? "+" : "") + delta + " since " + day(first.at))),
      h("div", { class: "card crit" }, h("div", { class: "n" }, crit + (open.next_after ? "+" : "")), h("div", { class: "l" }, "open high or critical secrets")),
      h("div", { class: "card crit" }, h("div", { class: "n" }, live), h("div", { class: "l" }, "verified live")),
      h("div", { class: "card" }, h("div", { class: "n" }, alerts.findings.length + (alerts.next_after ? "+" : "")), h("div", { class: "l" }, "open alerts"))),
    h("div", { class: "grid2" },
      h("section", { class: "panel" }, h("h2", {}, "Open long-lived secrets over time", h("span", { class: "muted" }, trend.points.length + " points, one per run")), chart(trend.points)),
      h("section", { class: "panel" }, h("h2", {}, "By owner"), breakdown(now.by_owner), h("h2", { class: "spaced" }, "By environment"), breakdown(now.by_environment))),
    h("div", { class: "grid2" },
      h("section", { class: "panel" }, h("h2", {}, "Newest exposures", h("a", { href: "#/findings?kind=exposure&order=newest" }, "all")),
        table([
          { title: "Severity", cell: (f) => sev(f.severity) },
          { title: "Credential", cell: (f) => fpLink(f, (f.record && f.record.access_key_id) || f.fingerprint.slice(0, 12)) },
          { title: "Verdict", cell: (f) => f.title.replace(/_/g, " ") },
          { title: "Owner", cell: (f) => f.owner || "—" },
          { title: "Seen", cls: "when", cell: (f) => day(f.last_seen) },
        ], exposure.findings, "No exposure recorded (keytrail exposure --db).")),
      h("section", { class: "panel" }, h("h2", {}, "Open alerts", h("a", { href: "#/alerts" }, "all")),
        table([
          { title: "Severity", cell: (f) => sev(f.severity) },
          { title: "Alert", cell: (f) => fpLink(f, f.title) },
          { title: "Seen", cls: "when", cell: (f) => day(f.last_seen) },
        ], alerts.findings, "No open alerts."))));
  sizeBars();
}

function query() {
  const q = location.hash.split("?")[1] || "";
  return new URLSearchParams(q);
}

async function findingsList(fixedKind, title) {
  const q = query();
  const params = new URLSearchParams();
  for (const k of ["kind", "status", "min_severity", "owner", "target", "rule_id", "assignee", "after", "order"]) {
    if (q.get(k) && !(fixedKind && k === "kind")) params.set(k, q.get(k));
  }
  if (!fixedKind && !params.get("kind")) params.set("kind", "secret");
  params.set("limit", "100");
  const listPath = fixedKind ? "/" + fixedKind : "/findings";
  const data = await api(listPath + "?" + params);
  const selected = new Set();

  const field = (label, el) => h("div", {}, h("label", { for: el.id }, label), el);
  const select = (id, options, value) => h("select", { id, name: id }, options.map(([v, t]) => h("option", { value: v, selected: v === (value || "") }, t)));
  const kindSel = select("f-kind", [["secret", "Secrets"], ["exposure", "Exposure"], ["alert", "Alerts"], ["posture", "Posture"], ["inventory", "Inventory"]], params.get("kind"));
  const statusSel = select("f-status", [["", "Any status"], ["open,acknowledged", "Open or acknowledged"], ...STATUSES.map((s) => [s, s.replace(/_/g, " ")])], params.get("status"));
  const sevSel = select("f-severity", [["", "Any severity"], ...SEVERITIES.map((s) => [s, s + " or worse"])], params.get("min_severity"));
  const owner = h("input", { id: "f-owner", name: "owner", value: params.get("owner") || "", placeholder: "team" });
  const target = h("input", { id: "f-target", name: "target", value: params.get("target") || "", placeholder: "repository or image" });
  const rule = h("input", { id: "f-rule", name: "rule_id", value: params.get("rule_id") || "", placeholder: "rule id" });
  const filters = h("form", { class: "filters", id: "filters", onsubmit: (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    if (!fixedKind) p.set("kind", kindSel.value);
    for (const [k, el] of [["status", statusSel], ["min_severity", sevSel], ["owner", owner], ["target", target], ["rule_id", rule]]) {
      if (el.value.trim()) p.set(k, el.value.trim());
    }
    location.hash = "#/" + (fixedKind || "findings") + "?" + p;
  } },
    fixedKind ? null : field("Kind", kindSel), field("Status", statusSel), field("Severity", sevSel),
    field("Owner", owner), field("Target", target), field("Rule", rule),
    h("button", { type: "submit", class: "primary", id: "apply-filters" }, "Filter"));

  const count = h("span", { id: "selected-count" }, "0 selected");
  const bulkStatus = select("bulk-status", STATUSES.map((s) => [s, s.replace(/_/g, " ")]), "acknowledged");
  const bulkAssignee = h("input", { id: "bulk-assignee", placeholder: "assignee (optional)" });
  const bulkButton = h("button", { class: "primary", id: "bulk-apply", disabled: true, onclick: async () => {
    bulkButton.disabled = true;
    // One request, one transaction: every selected finding changes, or none.
    const body = { fingerprints: [...selected], status: bulkStatus.value };
    if (bulkAssignee.value.trim()) body.assignee = bulkAssignee.value.trim();
    try {
      const r = await api("/findings/triage", { method: "POST", body });
      await route();
      toast(`${r.findings.length} finding(s) set to ${bulkStatus.value.replace(/_/g, " ")}`);
    } catch (e) {
      bulkButton.disabled = false;
      toast("Nothing changed: " + e.message);
    }
  } }, "Apply to selected");
  const bulk = canTriage()
    ? h("div", { class: "bulk", id: "bulk" }, h("strong", {}, "Triage"), count, bulkStatus, bulkAssignee, bulkButton)
    : null;
  const toggle = (fp, on) => {
    on ? selected.add(fp) : selected.delete(fp);
    count.textContent = selected.size + " selected";
    bulkButton.disabled = selected.size === 0;
  };
  const all = h("input", { type: "checkbox", "aria-label": "select all", onchange: (ev) => {
    document.querySelectorAll("input.pick").forEach((c) => { c.checked = ev.target.checked; toggle(c.value, c.checked); });
  } });
  const kind = fixedKind || params.get("kind");
  const columns = [
    canTriage() ? { title: all, cell: (f) => h("input", { type: "checkbox", class: "pick", value: f.fingerprint, "aria-label": "select", onchange: (ev) => toggle(f.fingerprint, ev.target.checked) }) } : null,
    { title: "Severity", cell: (f) => sev(f.severity) },
    { title: "Finding", cell: (f) => h("div", {}, fpLink(f, f.title), h("div", { class: "small muted mono" }, f.rule_id)) },
    kind === "secret" ? { title: "Secret", cell: (f) => h("code", {}, f.redacted || "—") } : null,
    kind === "secret" ? { title: "Verified", cell: (f) => (f.verification ? badge(f.verification.status) : h("span", { class: "muted" }, "—")) } : null,
    { title: "Status", cell: (f) => badge(f.status) },
    { title: "Owner", cell: (f) => f.owner || h("span", { class: "muted" }, "unowned") },
    { title: "Assignee", cell: (f) => f.assignee || h("span", { class: "muted" }, "—") },
    { title: "Where", cell: (f) => h("div", { class: "small" }, f.targets.slice(0, 2).join(", ") + (f.targets.length > 2 ? ` +${f.targets.length - 2}` : "")) },
    { title: "Places", num: true, cell: (f) => f.occurrences },
    { title: "Last seen", cls: "when", cell: (f) => day(f.last_seen) },
  ].filter(Boolean);
  const next = data.next_after
    ? h("a", { href: "#/" + (fixedKind || "findings") + "?" + (() => { const p = new URLSearchParams(q); p.set("after", data.next_after); return p; })() }, "Next page →")
    : null;
  page(title, `${data.findings.length}${data.next_after ? "+" : ""} shown`, filters, bulk,
    h("div", { id: "findings-table" }, table(columns, data.findings, "No finding matches these filters.")),
    h("div", { class: "pager" }, q.get("after") ? h("a", { href: "#/" + (fixedKind || "findings") }, "← First page") : null, next));
}

function kv(pairs) {
  return h("dl", { class: "kv" }, pairs.filter((p) => p[1] !== null && p[1] !== undefined && p[1] !== "").map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

// An object as a key/value list, nested values as compact text.
function anyKv(obj) {
  if (!obj || typeof obj !== "object") return h("span", { class: "muted" }, "—");
  return kv(Object.entries(obj).map(([k, v]) => [k.replace(/_/g, " "), typeof v === "object" && v !== null ? (Array.isArray(v) ? v.map((x) => (typeof x === "object" ? Object.values(x).join(": ") : x)).join(", ") : JSON.stringify(v)) : String(v)]));
}

function timeline(f) {
  const events = [];
  events.push({ at: f.first_seen, text: "First seen by keytrail", cls: "leak" });
  for (const e of f.exposure || []) {
    if (e.leaked_at) events.push({ at: e.leaked_at, text: "Leaked" + (e.leaked_at_from ? " (" + e.leaked_at_from + ")" : ""), cls: "leak" });
    if (e.first_use_after_leak) events.push({ at: e.first_use_after_leak, text: `First use after the leak (${e.uses_after_leak} use(s) after, ${e.uses_before_leak} before)`, cls: "use" });
    if (e.last_use) events.push({ at: e.last_use, text: "Last use", cls: "use" });
    for (const c of e.status_changes || []) events.push({ at: c.time, text: `Key ${c.status}` + (c.by ? ` by ${c.by}` : ""), cls: "ok" });
  }
  for (const a of f.alerts || []) events.push({ at: a.time, text: `Alert: ${a.title} (${a.severity})`, cls: "use" });
  for (const a of (f.history && f.history.audit) || []) {
    events.push({ at: a.at, text: `${a.actor} set ${a.field} ${a.before ? "from " + a.before + " " : ""}to ${a.after || "nothing"}`, cls: a.after === "revoked" || a.after === "fixed" ? "ok" : "" });
  }
  if (f.fixed_at) events.push({ at: f.fixed_at, text: "Gone from a complete run (fixed)", cls: "ok" });
  events.sort((a, b) => String(a.at).localeCompare(String(b.at)));
  return h("ul", { class: "timeline", id: "timeline" }, events.map((e) => h("li", { class: e.cls }, h("div", { class: "t" }, when(e.at)), e.text)));
}

async function credential(fp) {
  const f = await api("/findings/" + encodeURIComponent(fp));
  const ver = f.verification;
  const triage = canTriage()
    ? (() => {
        const status = h("select", { id: "t-status" }, STATUSES.map((s) => h("option", { value: s, selected: s === f.status }, s.replace(/_/g, " "))));
        const assignee = h("input", { id: "t-assignee", value: f.assignee || "", placeholder: "assignee" });
        const owner = h("input", { id: "t-owner", value: f.owner || "", placeholder: "owner" });
        const comment = h("textarea", { id: "t-comment", rows: 2, placeholder: "comment (optional)" });
        return h("section", { class: "panel" }, h("h2", {}, "Triage"),
          h("form", { class: "inline-form", id: "triage-form", onsubmit: async (ev) => {
            ev.preventDefault();
            const body = { if_version: f.version };
            if (status.value !== f.status) body.status = status.value;
            if (assignee.value.trim() !== (f.assignee || "")) body.assignee = assignee.value.trim() || null;
            if (owner.value.trim() !== (f.owner || "")) body.owner = owner.value.trim() || null;
            if (comment.value.trim()) body.comment = comment.value.trim();
            if (Object.keys(body).length === 1) return toast("Nothing changed");
            try {
              await api("/findings/" + f.fingerprint, { method: "PATCH", body });
              toast("Saved");
              route();
            } catch (e) {
              toast(e.status === 409 ? "Someone changed it meanwhile: reloaded" : e.message);
              if (e.status === 409) route();
            }
          } },
            h("div", {}, h("label", { for: "t-status" }, "Status"), status),
            h("div", {}, h("label", { for: "t-assignee" }, "Assignee"), assignee),
            h("div", {}, h("label", { for: "t-owner" }, "Owner"), owner),
            h("div", {}, h("label", { for: "t-comment" }, "Comment"), comment),
            h("button", { type: "submit", class: "primary", id: "t-save" }, "Save")));
      })()
    : h("p", { class: "muted small", id: "read-only" }, `Read only: your role (${me.role}) cannot triage.`);
  const locs = f.locations || [];
  page(f.title, null,
    h("div", { class: "cards" },
      h("div", { class: "card" }, h("div", { class: "l" }, "severity"), h("div", {}, sev(f.severity))),
      h("div", { class: "card" }, h("div", { class: "l" }, "status"), h("div", { id: "status" }, badge(f.status))),
      h("div", { class: "card" }, h("div", { class: "l" }, "verification"), h("div", {}, ver ? badge(ver.status) : h("span", { class: "muted" }, "not verified"))),
      h("div", { class: "card" }, h("div", { class: "l" }, "owner"), h("div", {}, f.owner || "unowned")),
      h("div", { class: "card" }, h("div", { class: "l" }, "places"), h("div", { class: "n" }, locs.length || f.targets.length))),
    triage,
    h("div", { class: "grid2" },
      h("section", { class: "panel" }, h("h2", {}, "About"),
        kv([
          ["Fingerprint", h("code", {}, f.fingerprint)],
          ["Kind", f.kind],
          ["Rule", h("code", {}, f.rule_id)],
          ["Secret", f.redacted ? h("code", {}, f.redacted) : null],
          ["Confidence", f.confidence],
          ["Assignee", f.assignee || "—"],
          ["First seen", when(f.first_seen)],
          ["Last seen", when(f.last_seen)],
          ["Fixed", f.fixed_at ? when(f.fixed_at) : null],
          ["Targets", f.targets.join(", ")],
        ])),
      h("section", { class: "panel" }, h("h2", {}, "Verification and blast radius"),
        ver ? kv([["Status", badge(ver.status)], ["Checked", when(ver.checked_at)], ["Verifier", ver.verifier], ["Detail", ver.detail],
          ...(ver.identity || []).map(([k, v]) => [k, h("code", {}, v)])]) : h("p", { class: "muted" }, "Not verified (keytrail verify --db)."),
        h("h2", { class: "spaced" }, "Blast radius"),
        f.blast_radius
          ? anyKv(f.blast_radius)
          : (f.exposure || []).length
            ? kv(f.exposure.map((e) => [
                e.access_key_id || "credential",
                [e.live ? "live" : "not live", e.status, (e.privilege || []).join(", "), e.verdict && String(e.verdict).replace(/_/g, " "),
                  e.action && e.action.kind ? "action: " + e.action.kind.replace(/_/g, " ") : null].filter(Boolean).join(" · "),
              ]))
            : h("p", { class: "muted" }, "Unknown."))),
    locs.length ? h("section", { class: "panel" }, h("h2", {}, "Every place it lives", h("span", { class: "muted" }, locs.length + " location(s)")),
      table([
        { title: "Source", cell: (l) => badge(typeof l.origin === "object" ? Object.keys(l.origin)[0] : l.origin || "file", "") },
        { title: "Path", cls: "wrap", cell: (l) => h("code", {}, l.path) },
        { title: "Line", num: true, cell: (l) => l.line },
        { title: "Where", cls: "wrap", cell: (l) => (typeof l.origin === "object" ? Object.values(l.origin).map((o) => (typeof o === "object" ? Object.values(o).filter((x) => typeof x === "string").join(" ") : o)).join(" ") : "") },
        { title: "Snippet (masked)", cls: "wrap", cell: (l) => h("code", {}, l.snippet || "") },
      ], locs)) : null,
    f.record ? h("section", { class: "panel" }, h("h2", {}, "Record"), anyKv(f.record)) : null,
    h("div", { class: "grid2" },
      h("section", { class: "panel" }, h("h2", {}, "Timeline", h("span", { class: "muted" }, "leak, use after leak, triage")), timeline(f)),
      h("section", { class: "panel" }, h("h2", {}, "Alerts"),
        table([
          { title: "Severity", cell: (a) => sev(a.severity) },
          { title: "Alert", cell: (a) => a.title },
          { title: "Principal", cls: "wrap", cell: (a) => a.principal },
          { title: "When", cls: "when", cell: (a) => when(a.time) },
        ], f.alerts || [], "No alert names this credential."),
        h("h2", { class: "spaced" }, "Comments"),
        table([
          { title: "Who", cell: (c) => c.author },
          { title: "When", cls: "when", cell: (c) => when(c.created_at) },
          { title: "Comment", cell: (c) => c.body },
        ], (f.history && f.history.comments) || [], "No comments."))));
}

async function inventory() {
  const q = query();
  const p = new URLSearchParams({ limit: "1000" });
  if (q.get("owner")) p.set("owner", q.get("owner"));
  const data = await api("/inventory?" + p);
  const rows = data.findings.map((f) => ({ f, r: f.record || {} }));
  page("Inventory", `${rows.length} identities and credentials from keytrail inventory --db`,
    table([
      { title: "Kind", cell: ({ r }) => h("code", {}, r.kind) },
      { title: "Name", cell: ({ f, r }) => fpLink(f, r.name) },
      { title: "Owner", cell: ({ r }) => r.owner },
      { title: "Env", cell: ({ r }) => r.environment || "—" },
      { title: "Age (days)", num: true, cell: ({ r }) => (r.age_days ?? "—") },
      { title: "Unused (days)", num: true, cell: ({ r }) => (r.days_unused ?? "—") },
      { title: "Privilege", cell: ({ r }) => (r.privilege || []).join(", ") },
      { title: "Flags", cell: ({ r }) => (r.flags || []).map((x) => badge(x, "open")) },
      { title: "Status", cell: ({ f }) => badge(f.fixed_at ? "gone" : f.status, f.fixed_at ? "fixed" : f.status) },
    ], rows, "No inventory recorded (keytrail inventory --snapshot … --db …)."));
}

async function runs() {
  const data = await api("/runs");
  page("Runs", `${data.runs.length} recorded`,
    table([
      { title: "#", num: true, cell: (r) => r.id },
      { title: "Command", cell: (r) => h("code", {}, r.command) },
      { title: "Target", cls: "wrap", cell: (r) => r.target },
      { title: "Finished", cls: "when", cell: (r) => when(r.finished_at) },
      { title: "Complete", cell: (r) => (r.complete ? "yes" : "no") },
      { title: "Findings", num: true, cell: (r) => r.findings },
      { title: "Version", cell: (r) => r.keytrail_version },
    ], data.runs.slice().reverse(), "No runs recorded."));
}

// Jobs of `keytrail submit` and the workers running them (GET /api/v1/jobs).
async function jobs() {
  const data = await api("/jobs");
  const c = data.counts, t = data.throughput;
  const stateBadge = (s) => badge(s, { queued: "acknowledged", running: "live", done: "fixed", failed: "open" }[s] || s);
  page("Jobs", `the newest ${data.jobs.length} jobs of keytrail submit, and the workers`,
    h("div", { class: "cards", id: "job-counts" },
      h("div", { class: "card" }, h("div", { class: "n", id: "jobs-queued" }, c.queued), h("div", { class: "l" }, "queued")),
      h("div", { class: "card high" }, h("div", { class: "n", id: "jobs-running" }, c.running), h("div", { class: "l" }, "running")),
      h("div", { class: "card ok" }, h("div", { class: "n", id: "jobs-done" }, c.done), h("div", { class: "l" }, "done")),
      h("div", { class: "card crit" }, h("div", { class: "n", id: "jobs-failed" }, c.failed), h("div", { class: "l" }, "failed (dead-lettered)")),
      h("div", { class: "card" }, h("div", { class: "n", id: "jobs-per-minute" }, t.jobs_per_minute.toFixed(1)),
        h("div", { class: "l" }, `jobs a minute (last ${Math.round(t.window_seconds / 60)} min)`),
        h("div", { class: "small muted" }, `${t.jobs_done} done, ${t.findings} findings`))),
    h("section", { class: "panel" }, h("h2", {}, "Workers", h("span", { class: "muted" }, "a heartbeat in the last 30 s is alive")),
      table([
        { title: "Worker", cell: (w) => h("code", {}, w.name) },
        { title: "Host", cell: (w) => `${w.host} (pid ${w.pid})` },
        { title: "State", cell: (w) => badge(w.alive ? "alive" : "gone", w.alive ? "fixed" : "open") },
        { title: "Heartbeat", cls: "when", cell: (w) => when(w.heartbeat_at) },
        { title: "Running", cls: "wrap", cell: (w) => w.job_key || "—" },
        { title: "Done", num: true, cell: (w) => w.jobs_done },
        { title: "Failed tries", num: true, cell: (w) => w.jobs_failed },
      ], data.workers, "No worker has reported (keytrail worker --db …).")),
    h("section", { class: "panel" }, h("h2", {}, "Jobs"),
      table([
        { title: "#", num: true, cell: (j) => j.id },
        { title: "State", cell: (j) => stateBadge(j.state) },
        { title: "Kind", cell: (j) => h("code", {}, j.kind) },
        { title: "Target", cls: "wrap", cell: (j) => j.target },
        { title: "Tries", num: true, cell: (j) => j.attempts },
        { title: "Worker", cell: (j) => j.worker || "—" },
        { title: "Submitted", cls: "when", cell: (j) => when(j.submitted_at) },
        { title: "Finished", cls: "when", cell: (j) => when(j.finished_at) },
        { title: "Findings", num: true, cell: (j) => (j.findings ?? "—") },
        { title: "Error", cls: "wrap error", cell: (j) => j.error || "" },
      ], data.jobs, "No jobs (keytrail submit scan … --db …).")));
}

async function route() {
  const path = location.hash.replace(/^#/, "").split("?")[0] || "/";
  const pageName = path === "/" ? "overview" : path.split("/")[1];
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === (pageName === "finding" ? "findings" : pageName)));
  try {
    if (path === "/") await overview();
    else if (path === "/findings") await findingsList(null, "Findings");
    else if (path === "/alerts") await findingsList("alerts", "Alerts");
    else if (path === "/posture") await findingsList("posture", "Posture");
    else if (path === "/inventory") await inventory();
    else if (path === "/runs") await runs();
    else if (path === "/jobs") await jobs();
    else if (path.startsWith("/finding/")) await credential(decodeURIComponent(path.slice(9)));
    else page("Not found", null, h("p", {}, "No such page."));
    document.body.dataset.hash = location.hash;
    document.body.dataset.ready = path;
  } catch (e) {
    if (e.message !== "not logged in") failed(e);
  }
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", async () => {
  try {
    me = await api("/me");
  } catch (e) {
    return;
  }
  document.getElementById("who").textContent = `${me.name} · ${me.role}`;
  document.getElementById("logout-csrf").value = me.csrf || "";
  route();
});
