// The chain page: ranking of the stores one may see, by hour or weekday, drill-down to a store.
const $ = (s) => document.querySelector(s);
const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const api = async (path, options) => {
  const r = await fetch(`/api/chain/v1${path}`, { credentials: "same-origin", ...options });
  const body = await r.json();
  if (!r.ok) throw Object.assign(new Error(body.error?.message || r.status), { status: r.status });
  return body;
};
const pct = (x) => (x == null ? "—" : `${(x * 100).toFixed(1)} %`);
const s = (x) => (x == null ? "—" : x.toFixed(1));
const esc = (t) => String(t).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
const label = (by, k) => (by === "weekday" ? WEEKDAYS[k] : `${String(k).padStart(2, "0")}:00`);

function row(r, i) {
  const share = r.share == null ? "—" : `<span class="bar" style="width:${(r.share * 4).toFixed(1)}rem"></span> ${pct(r.share)}`;
  return `<tr class="store" data-store="${esc(r.store)}"><td>${i + 1}</td><td class="name">${esc(r.name)}</td>
    <td class="name">${esc(r.region)}</td><td>${r.calls}</td><td>${share}</td><td>${s(r.p50)}</td>
    <td>${s(r.p90)}</td><td>${s(r.p95)}</td><td>${r.missed}</td></tr>`;
}

function groupTable(by, rows, withStore) {
  const head = `<tr>${withStore ? "<th>store</th>" : ""}<th>${by}</th><th>calls</th><th>within standard</th><th>median s</th><th>p90 s</th><th>p95 s</th></tr>`;
  const body = rows.map((r) => `<tr>${withStore ? `<td class="name">${esc(r.name || r.store)}</td>` : ""}<td>${label(by, r.key)}</td>
    <td>${r.calls}</td><td>${pct(r.share)}</td><td>${s(r.p50)}</td><td>${s(r.p90)}</td><td>${s(r.p95)}</td></tr>`).join("");
  return `<table><thead>${head}</thead><tbody>${body}</tbody></table>`;
}

async function showRanking() {
  $("#store").hidden = true;
  $("#ranking").hidden = false;
  const by = $("#by").value;
  const data = await api(`/ranking?months=${$("#months").value}${by ? `&by=${by}` : ""}`);
  $("#stores tbody").innerHTML = data.stores.map(row).join("") || `<tr><td colspan="9">No calls in this period yet.</td></tr>`;
  $("#groups").innerHTML = by ? `<h2>By ${by === "hour" ? "hour of day" : "weekday"}</h2>` + groupTable(by, data.groups, true) : "";
  for (const tr of document.querySelectorAll("tr.store")) tr.onclick = () => showStore(tr.dataset.store);
}

async function showStore(id) {
  const d = await api(`/stores/${encodeURIComponent(id)}?months=${$("#months").value}`);
  $("#ranking").hidden = true;
  $("#store").hidden = false;
  const o = d.overall;
  $("#store-title").textContent = `${d.name} (${d.region}): ${o ? `${o.calls} calls, ${pct(o.share)} within standard, p90 ${s(o.p90)} s` : "no calls"}`;
  $("#store-tables").innerHTML = "<h3>By hour of day</h3>" + groupTable("hour", d.hour, false) +
    "<h3>By weekday</h3>" + groupTable("weekday", d.weekday, false);
}

async function start() {
  try {
    const me = await api("/me");
    $("#title").textContent = `Callbell — ${me.chain}`;
    $("#who").textContent = me.demo ? "" : `${me.user} (${me.role === "chain" ? "all regions" : "your regions"})`;
    $("#demo").hidden = !me.demo;
    $("#signin").hidden = true;
    await showRanking();
  } catch (e) {
    if (e.status !== 401) throw e;
    $("#signin").hidden = false;
  }
}

$("#signin-form").onsubmit = async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  try {
    await api("/session", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user: f.get("user"), password: f.get("password") }) });
    await start();
  } catch (e) { $("#signin-error").textContent = e.message; }
};
$("#months").onchange = $("#by").onchange = () => showRanking();
$("#back").onclick = (ev) => { ev.preventDefault(); showRanking(); };
start();
