// leadflow pages: fetch the page's server-rendered fragment with the API key kept in this
// tab's sessionStorage (from the key form, or #key=… moved there at once), never in a URL.
// No dependencies; no inline script (the pages' CSP allows scripts from this origin only).
"use strict";

(function () {
  const KEY_STORAGE = "leadflow.pages.key";
  const POLL_MS = 1000;
  const POLL_LIMIT_MS = 30000;
  const $ = (id) => document.getElementById(id);
  const state = { key: null };

  function storage() {
    try {
      return window.sessionStorage;
    } catch (_err) {
      return null;
    }
  }

  function readKey() {
    const fromHash = new URLSearchParams(window.location.hash.replace(/^#/, "")).get("key");
    const store = storage();
    if (fromHash) {
      if (store) store.setItem(KEY_STORAGE, fromHash);
      // Out of the address bar (and the history) at once.
      history.replaceState(null, "", window.location.pathname + window.location.search);
      return fromHash;
    }
    return store ? store.getItem(KEY_STORAGE) : null;
  }

  function show(id, message) {
    const line = $(id);
    line.textContent = message;
    line.hidden = !message;
  }

  function askForKey(message) {
    show("error", message);
    $("key-form").hidden = false;
    $("forget-key").hidden = true;
    $("content").setAttribute("aria-busy", "false");
    $("content").replaceChildren();
    $("key-input").focus();
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      // A problem (RFC 9457) says what went wrong in `detail`; the legacy body in `error.message`.
      if (body && typeof body.detail === "string") return body.detail;
      if (body && body.error && body.error.message) return body.error.message;
    } catch (_err) {
      // not JSON: the status line will do
    }
    return `HTTP ${response.status} ${response.statusText}`.trim();
  }

  // Drop empty values: an empty select means "any", which the API spells by leaving it out.
  function cleanQuery(search) {
    const kept = new URLSearchParams();
    for (const [name, value] of new URLSearchParams(search)) {
      if (value.trim() !== "") kept.append(name, value);
    }
    const text = kept.toString();
    return text ? `?${text}` : "";
  }

  function fragmentUrl() {
    return $("content").dataset.fragment + cleanQuery(window.location.search);
  }

  function headers(extra) {
    return Object.assign({ Authorization: `Bearer ${state.key}` }, extra || {});
  }

  // Fetch and show the fragment; returns true when it was shown.
  async function load() {
    if (!state.key) {
      askForKey("");
      return false;
    }
    const content = $("content");
    content.setAttribute("aria-busy", "true");
    let response;
    try {
      response = await fetch(fragmentUrl(), { headers: headers(), cache: "no-store" });
    } catch (err) {
      show("error", `Could not reach leadflow: ${err.message || err}`);
      return false;
    }
    if (response.status === 401 || response.status === 403) {
      askForKey(`The API refused this key (${response.status}): ${await errorText(response)}`);
      return false;
    }
    if (!response.ok) {
      content.setAttribute("aria-busy", "false");
      content.replaceChildren();
      show("error", await errorText(response));
      return false;
    }
    // Server-rendered by Jinja2 with everything escaped.
    content.innerHTML = await response.text();
    content.setAttribute("aria-busy", "false");
    show("error", "");
    $("key-form").hidden = true;
    $("forget-key").hidden = false;
    const heading = content.querySelector("h1");
    if (heading) document.title = `${heading.textContent.trim()} · leadflow`;
    return true;
  }

  // ---- feedback: POST /v1/leads/{id}/feedback, then refresh until scoring has it ------------

  function leadMark() {
    const root = $("lead");
    return root ? `${root.dataset.updated}|${root.dataset.touches}` : null;
  }

  async function waitForScoring(before) {
    const started = Date.now();
    while (Date.now() - started < POLL_LIMIT_MS) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      if (!(await load())) return false;
      if (leadMark() !== before) return true;
    }
    return false;
  }

  async function sendFeedback(type, reason) {
    const root = $("lead");
    if (!root) return;
    const before = leadMark();
    const buttons = document.querySelectorAll("[data-feedback]");
    buttons.forEach((b) => { b.disabled = true; });
    show("notice", `Sending “${type}”…`);
    let response;
    try {
      response = await fetch(`/v1/leads/${encodeURIComponent(root.dataset.leadId)}/feedback`, {
        method: "POST",
        headers: headers({ "Content-Type": "application/json" }),
        body: JSON.stringify(reason ? { type, reason } : { type }),
        cache: "no-store",
      });
    } catch (err) {
      show("notice", "");
      show("error", `Could not send the feedback: ${err.message || err}`);
      buttons.forEach((b) => { b.disabled = false; });
      return;
    }
    if (!response.ok) {
      const why = await errorText(response);
      show("notice", "");
      show("error", response.status === 403
        ? `This key may not give feedback (it needs leads:write): ${why}` : why);
      buttons.forEach((b) => { b.disabled = false; });
      return;
    }
    show("notice", `Feedback “${type}” recorded; waiting for scoring to take it in…`);
    const done = await waitForScoring(before);
    show("notice", done ? `Feedback “${type}” recorded and scored.`
      : `Feedback “${type}” recorded; scoring has not taken it in yet (reload to check).`);
  }

  function onClick(event) {
    const target = event.target.closest("button");
    if (!target) return;
    if (target.id === "forget-key") {
      const store = storage();
      if (store) store.removeItem(KEY_STORAGE);
      state.key = null;
      askForKey("Key forgotten.");
      return;
    }
    if (target.id === "reject-cancel") {
      $("reject-form").hidden = true;
      return;
    }
    const type = target.dataset.feedback;
    if (!type) return;
    if (type === "rejected") {
      // A rejection needs a reason: ask for it.
      $("reject-form").hidden = false;
      $("reject-reason").focus();
      return;
    }
    sendFeedback(type, null);
  }

  function onSubmit(event) {
    const form = event.target;
    if (form.id === "key-form") {
      event.preventDefault();
      const key = $("key-input").value.trim();
      if (!key) return;
      state.key = key;
      const store = storage();
      if (store) store.setItem(KEY_STORAGE, key);
      $("key-input").value = "";
      load();
    } else if (form.id === "reject-form") {
      event.preventDefault();
      const reason = $("reject-reason").value.trim();
      if (!reason) return;
      form.hidden = true;
      sendFeedback("rejected", reason);
    } else if (form.id === "filters") {
      // Filters go into the page's query string (they are no secret); empty ones are left out.
      event.preventDefault();
      const query = new URLSearchParams(new FormData(form)).toString();
      window.location.assign(form.getAttribute("action") + cleanQuery(query));
    }
  }

  document.addEventListener("click", onClick);
  document.addEventListener("submit", onSubmit);
  state.key = readKey();
  load();
})();
