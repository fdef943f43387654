// leadflow /ops dashboard: polls /v1/ops/overview every 2 s and draws inline-SVG charts.
// No dependencies. Every chart container gets an <svg data-series="N"> when it has data
// (N = lines or bar rows drawn) or the text "no data yet".
"use strict";

(function () {
  const OVERVIEW_URL = "/v1/ops/overview";
  const REFRESH_MS = 2000;
  const KEY_STORAGE = "leadflow.ops.key";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2",
    "#65a30d", "#db2777", "#475569", "#ca8a04"];
  // Well-known statuses keep the same colour everywhere; others take the palette in order.
  const KNOWN_COLOURS = {
    sent: "#16a34a", delivered: "#16a34a", succeeded: "#16a34a", ok: "#16a34a",
    pending: "#d97706", queued: "#d97706", retrying: "#ca8a04", skipped: "#94a3b8",
    suppressed: "#94a3b8", failed: "#dc2626", error: "#dc2626", dead: "#7f1d1d",
    depth: "#dc2626", replayed: "#2563eb",
  };

  const state = { key: null, paused: false, inFlight: false, lastOkAt: null };
  const $ = (id) => document.getElementById(id);

  // ---- key handling: #key=... (moved into sessionStorage) or sessionStorage --------------

  function storage() {
    try {
      return window.sessionStorage;
    } catch (_err) {
      return null;
    }
  }

  function readKey() {
    const hash = window.location.hash.replace(/^#/, "");
    const fromHash = new URLSearchParams(hash).get("key");
    if (fromHash) {
      const store = storage();
      if (store) store.setItem(KEY_STORAGE, fromHash);
      // Take the key out of the address bar (and history) at once.
      history.replaceState(null, "", window.location.pathname + window.location.search);
      return fromHash;
    }
    const store = storage();
    return store ? store.getItem(KEY_STORAGE) : null;
  }

  function askForKey(message) {
    state.paused = true;
    showError(message);
    if (!state.lastOkAt) $("status").textContent = "waiting for an API key";
    $("key-form").hidden = false;
    $("key-input").focus();
  }

  function onKeySubmit(event) {
    event.preventDefault();
    const key = $("key-input").value.trim();
    if (!key) return;
    state.key = key;
    const store = storage();
    if (store) store.setItem(KEY_STORAGE, key);
    $("key-input").value = "";
    state.paused = false;
    refresh();
  }

  // ---- fetching ----------------------------------------------------------------------------

  function showError(message) {
    const line = $("error");
    line.textContent = message;
    line.hidden = false;
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      // A problem (RFC 9457) says what went wrong in `detail`; the legacy body in `error.message`.
      if (body && typeof body.detail === "string") return body.detail;
      if (body && body.error && body.error.message) return body.error.message;
    } catch (_err) {
      // not JSON: fall through to the status text
    }
    return `HTTP ${response.status} ${response.statusText}`.trim();
  }

  async function refresh() {
    if (state.paused || state.inFlight) return;
    state.inFlight = true;
    const headers = { Accept: "application/json" };
    if (state.key) headers.Authorization = `Bearer ${state.key}`;
    try {
      const response = await fetch(OVERVIEW_URL, { headers, cache: "no-store" });
      if (response.status === 401 || response.status === 403) {
        const why = await errorText(response);
        askForKey(state.key ? `The API refused this key (${response.status}): ${why}`
          : "An API key is needed to read the operations overview.");
        return;
      }
      if (!response.ok) throw new Error(await errorText(response));
      const data = await response.json();
      render(data);
      state.lastOkAt = new Date();
      $("status").textContent = `updated ${clock(state.lastOkAt)}`;
      $("error").hidden = true;
      $("key-form").hidden = true;
    } catch (err) {
      const kept = state.lastOkAt ? `; showing data from ${clock(state.lastOkAt)}` : "";
      showError(`Refresh failed at ${clock(new Date())}: ${err.message || err}${kept}`);
    } finally {
      state.inFlight = false;
    }
  }

  // ---- formatting --------------------------------------------------------------------------

  function pad(n) {
    return String(n).padStart(2, "0");
  }

  function clock(date) {
    return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  }

  function fmt(value) {
    if (!Number.isFinite(value)) return "–";
    const abs = Math.abs(value);
    if (abs >= 1000) return Math.round(value).toLocaleString("en-US");
    if (abs >= 10) return String(Math.round(value * 10) / 10);
    return String(Math.round(value * 100) / 100);
  }

  function shorten(text, max) {
    return text.length > max ? `${text.slice(0, max - 1)}…` : text;
  }

  // ---- SVG helpers -------------------------------------------------------------------------

  function el(name, attrs, text) {
    const node = document.createElementNS(SVG_NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function colourFor(name, index) {
    return KNOWN_COLOURS[name] || PALETTE[index % PALETTE.length];
  }

  function empty(container) {
    const note = document.createElement("div");
    note.className = "empty";
    note.textContent = "no data yet";
    container.replaceChildren(note);
  }

  function legend(items) {
    const list = document.createElement("ul");
    list.className = "legend";
    for (const item of items) {
      const li = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = item.colour;
      const name = document.createElement("span");
      name.textContent = item.name;
      li.append(swatch, name);
      if (item.value !== undefined) {
        const value = document.createElement("span");
        value.className = "value";
        value.textContent = item.value;
        li.append(value);
      }
      list.append(li);
    }
    return list;
  }

  // ---- line chart: series = [{name, points: [[ms, value], ...]}] ----------------------------

  function lineChart(container, series, unit) {
    const drawn = series.filter((s) => Array.isArray(s.points) && s.points.length > 0);
    if (drawn.length === 0) return empty(container);
    const W = 560, H = 190, L = 46, R = 12, T = 10, B = 22;
    const all = drawn.flatMap((s) => s.points);
    const t0 = Math.min(...all.map((p) => p[0]));
    const t1 = Math.max(...all.map((p) => p[0]));
    const yMin = Math.min(0, ...all.map((p) => p[1]));
    let yMax = Math.max(...all.map((p) => p[1]));
    if (yMax <= yMin) yMax = yMin + 1;
    const x = (t) => L + (t1 === t0 ? (W - L - R) : ((t - t0) / (t1 - t0)) * (W - L - R));
    const y = (v) => T + (1 - (v - yMin) / (yMax - yMin)) * (H - T - B);

    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "data-series": drawn.length,
      "aria-label": `${drawn.length} series, ${unit}` });
    svg.append(
      el("line", { class: "grid-line", x1: L, x2: W - R, y1: y(yMax), y2: y(yMax) }),
      el("line", { class: "grid-line", x1: L, x2: W - R, y1: y((yMin + yMax) / 2),
        y2: y((yMin + yMax) / 2) }),
      el("line", { class: "axis", x1: L, x2: W - R, y1: y(yMin), y2: y(yMin) }),
      el("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }),
      el("text", { x: L - 6, y: y(yMax) + 4, "text-anchor": "end" }, fmt(yMax)),
      el("text", { x: L - 6, y: y(yMin) + 4, "text-anchor": "end" }, fmt(yMin)),
      el("text", { x: L, y: H - 6, "text-anchor": "start" }, clock(new Date(t0))),
      el("text", { x: W - R, y: H - 6, "text-anchor": "end" }, clock(new Date(t1))),
    );
    const items = [];
    drawn.forEach((s, i) => {
      const colour = colourFor("", i);
      const d = s.points
        .map((p, j) => `${j === 0 ? "M" : "L"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`)
        .join(" ");
      const path = el("path", { class: "series", d, stroke: colour, "data-label": s.name });
      path.append(el("title", {}, s.name));
      svg.append(path);
      const last = s.points[s.points.length - 1];
      svg.append(el("circle", { cx: x(last[0]), cy: y(last[1]), r: 2.5, fill: colour }));
      items.push({ name: s.name, colour, value: `${fmt(last[1])} ${unit}` });
    });
    container.replaceChildren(svg, legend(items));
  }

  // ---- horizontal bar chart: rows = [{label, parts: [{name, value}]}] ------------------------
  // mode "stack" puts a row's parts end to end; "group" draws one thin bar per part.

  function barChart(container, rows, mode) {
    const drawn = rows.filter((r) => r.parts.length > 0);
    if (drawn.length === 0) return empty(container);
    const names = [...new Set(drawn.flatMap((r) => r.parts.map((p) => p.name)))];
    const colours = Object.fromEntries(names.map((n, i) => [n, colourFor(n, i)]));
    const grouped = mode === "group";
    const sub = grouped ? names.length : 1;
    const barH = grouped ? 11 : 16, gap = 10;
    const rowH = barH * sub + gap;
    const longest = Math.max(...drawn.map((r) => Math.min(r.label.length, 32)));
    const W = 560, R = 56, T = 4, L = Math.max(60, Math.min(210, longest * 6.4 + 14));
    const H = T + rowH * drawn.length + 16;
    const total = (r) => r.parts.reduce((sum, p) => sum + p.value, 0);
    const max = Math.max(1, ...drawn.map((r) => (grouped
      ? Math.max(...r.parts.map((p) => p.value)) : total(r))));
    const scale = (v) => (v / max) * (W - L - R);

    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "data-series": drawn.length,
      "aria-label": `${drawn.length} bars` });
    svg.append(el("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - 16 }),
      el("text", { x: L, y: H - 3, "text-anchor": "start" }, "0"),
      el("text", { x: W - R, y: H - 3, "text-anchor": "end" }, fmt(max)));
    drawn.forEach((row, i) => {
      const top = T + i * rowH;
      const label = el("text", { class: "label", x: L - 8, y: top + (barH * sub) / 2 + 4,
        "text-anchor": "end" }, shorten(row.label, 32));
      label.append(el("title", {}, row.label));
      svg.append(label);
      let offset = 0;
      row.parts.forEach((part) => {
        const k = grouped ? names.indexOf(part.name) : 0;
        const width = Math.max(part.value > 0 ? 2 : 0, scale(part.value));
        const rect = el("rect", { x: L + offset, y: top + k * barH, width, height: barH - 1,
          rx: 2, fill: colours[part.name], "data-label": row.label, "data-part": part.name,
          "data-value": part.value });
        rect.append(el("title", {}, `${row.label} · ${part.name}: ${fmt(part.value)}`));
        svg.append(rect);
        if (grouped) {
          svg.append(el("text", { x: L + width + 4, y: top + k * barH + barH - 2 },
            fmt(part.value)));
        } else {
          offset += width;
        }
      });
      if (!grouped) {
        svg.append(el("text", { x: L + offset + 4, y: top + barH - 3 }, fmt(total(row))));
      }
    });
    const parts = [svg];
    if (names.length > 1 || grouped) {
      parts.push(legend(names.map((n) => ({ name: n, colour: colours[n] }))));
    }
    container.replaceChildren(...parts);
  }

  // ---- the overview --------------------------------------------------------------------------

  function list(value) {
    return Array.isArray(value) ? value : [];
  }

  function renderBroker(data) {
    const broker = data.broker || {};
    const line = $("broker");
    const parts = [`broker: ${broker.kind || "unknown"} at ${broker.bootstrap_servers || "?"}`];
    if (broker.cluster_id) parts.push(`(cluster ${broker.cluster_id})`);
    line.textContent = parts.join(" ");
    if (broker.end_offsets_exact === false && broker.note) {
      const note = document.createElement("span");
      note.className = "note";
      note.textContent = ` — ${broker.note}`;
      line.append(note);
    }
    const win = Number(data.window_s), every = Number(data.sample_interval_s);
    $("window").textContent = Number.isFinite(win)
      ? `Charts cover the last ${fmt(win / 60)} min, sampled every ${fmt(every)} s` +
        (data.generated_at ? `; server time ${data.generated_at}.` : ".")
      : "";
  }

  function byStatus(entries, rowKey, partKey) {
    const rows = new Map();
    for (const e of entries) {
      const label = String(e[rowKey]);
      if (!rows.has(label)) rows.set(label, { label, parts: [] });
      rows.get(label).parts.push({ name: String(e[partKey]), value: Number(e.count) || 0 });
    }
    return [...rows.values()];
  }

  function single(entries, key) {
    return entries.map((e) => ({ label: String(e[key]),
      parts: [{ name: "count", value: Number(e.count) || 0 }] }));
  }

  function render(data) {
    renderBroker(data);
    lineChart($("chart-throughput"),
      list(data.throughput).map((s) => ({ name: s.topic, points: list(s.points) })), "/s");
    lineChart($("chart-lag"), list(data.lag).map((s) => ({
      name: `${s.group} · ${s.topic}[${s.partition}]`, points: list(s.points) })), "behind");
    barChart($("chart-dlq"), list(data.dlq).map((d) => ({ label: d.topic, parts: [
      { name: "depth", value: Number(d.depth) || 0 },
      { name: "replayed", value: Number(d.replayed) || 0 }] })), "group");
    barChart($("chart-actions"), byStatus(list(data.actions), "kind", "status"), "stack");
    barChart($("chart-sla"), single(list(data.sla_breaches), "team"), "stack");
    barChart($("chart-leads"), single(list(data.leads), "qualification"), "stack");
  }

  function start() {
    for (const id of ["chart-throughput", "chart-lag", "chart-dlq", "chart-actions",
      "chart-sla", "chart-leads"]) empty($(id));
    $("key-form").addEventListener("submit", onKeySubmit);
    state.key = readKey();
    refresh();
    window.setInterval(refresh, REFRESH_MS);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
