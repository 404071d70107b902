// mailbeacon dashboard: live feed (server-sent events), first-open
// notifications, and copying the pixel as rich HTML. No dependencies.
"use strict";

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// --- times: "2 h ago", the absolute time in the page's zone on hover --------
// The server renders <time datetime=UTC title=absolute>; this keeps the words
// current and gives times added by the live feed the same form.

function browserZone() {
  try { return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"; } catch (e) { return "UTC"; }
}

function pageZone() { return document.documentElement.getAttribute("data-tz") || "UTC"; }

// Mirrors times.relative in times.py.
function relative(at, now) {
  const delta = (now - at) / 1000, ahead = delta < 0, s = Math.abs(delta);
  if (s < 45) return ahead ? "in a moment" : "just now";
  let words;
  if (s < 3600) words = Math.max(1, Math.floor(s / 60)) + " min";
  else if (s < 86400) words = Math.floor(s / 3600) + " h";
  else { const d = Math.floor(s / 86400); words = d + (d === 1 ? " day" : " days"); }
  return ahead ? "in " + words : words + " ago";
}
const RELATIVE_LIMIT = 30 * 86400 * 1000;

function absolute(date, zone) {
  try {
    const parts = {};
    for (const p of new Intl.DateTimeFormat("en-US", {
      timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
      minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZoneName: "short",
    }).formatToParts(date)) parts[p.type] = p.value;
    return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second} ${parts.timeZoneName}`;
  } catch (e) { return date.toISOString(); }
}

function timeEl(iso) {
  const date = new Date(iso);
  const t = el("time", { datetime: iso, title: absolute(date, pageZone()) });
  t.textContent = relative(date.getTime(), Date.now());
  return t;
}

function when(iso) { return relative(new Date(iso).getTime(), Date.now()); }

function refreshTimes(retitle) {
  const now = Date.now(), zone = pageZone();
  for (const t of document.querySelectorAll("time[datetime]")) {
    const date = new Date(t.getAttribute("datetime"));
    if (isNaN(date)) continue;
    if (retitle || !t.title) t.title = absolute(date, zone);
    t.textContent = Math.abs(now - date) < RELATIVE_LIMIT ? relative(date.getTime(), now) : t.title.slice(0, 16);
  }
}

// Without a saved zone the server uses the browser's, sent in the mb_tz cookie
// (read by times.browser_zone). The first page before the cookie existed was
// rendered in UTC: its hover titles are redone here rather than reloading
// (the page may be the answer to a POST).
function setupZone() {
  const bz = browserZone();
  for (const s of document.querySelectorAll("[data-browser-zone]")) s.textContent = " (" + bz + ")";
  const list = document.getElementById("zones");
  if (list && document.querySelector("input[list=zones]") && Intl.supportedValuesOf) {
    for (const z of Intl.supportedValuesOf("timeZone")) list.append(el("option", { value: z }));
  }
  if (document.documentElement.getAttribute("data-tz-saved") === "1") return;
  if (!document.cookie.split("; ").includes("mb_tz=" + encodeURIComponent(bz))) {
    document.cookie = "mb_tz=" + encodeURIComponent(bz) + "; path=/; max-age=31536000; samesite=lax";
  }
  if (pageZone() !== bz) { document.documentElement.setAttribute("data-tz", bz); refreshTimes(true); }
}

// --- notifications: which hits, per the user's Settings (alerts.py) ---------

function alertPrefs() {
  try { return JSON.parse(document.documentElement.getAttribute("data-notify") || "null"); }
  catch (e) { return null; }
}

// The preference a hit satisfies, or null: first human open / click / reply,
// for every message, 1-to-1 messages only, or chosen campaigns (and 1-to-1).
function alertKind(ev, prefs) {
  if (!prefs) return null;
  const inCampaign = ev.campaign_id != null && ev.campaign_id !== 0;
  if (prefs.scope === "one_to_one" && inCampaign) return null;
  if (prefs.scope === "campaigns" && inCampaign && !prefs.campaigns.includes(ev.campaign_id)) return null;
  const kinds = [];
  if (ev.first_open) kinds.push("first_open");
  if (ev.first_click) kinds.push("first_click");
  if (ev.first_reply) kinds.push("reply");
  return kinds.find((k) => prefs.events.includes(k)) || null;
}

const ALERT_TITLES = { first_open: "Opened", first_click: "Clicked", reply: "Replied" };

async function alertFor(ev) {
  const kind = alertKind(ev, alertPrefs());
  if (!kind || !("Notification" in window) || Notification.permission !== "granted") return;
  const title = ALERT_TITLES[kind] + ": " + (ev.subject || "(no subject)");
  const opts = {
    body: (ev.recipient || "") + " — " + (ev.what || kind) + " (" + ev.label_words + ")",
    tag: "mb-" + kind + "-" + ev.message_id,  // one per message and kind, however many tabs
    data: { url: "/messages/" + ev.message_id },
  };
  const reg = "serviceWorker" in navigator ? await navigator.serviceWorker.getRegistration() : null;
  if (reg) { await reg.showNotification(title, opts); return; }
  const n = new Notification(title, opts);
  n.onclick = () => { window.focus(); location.href = opts.data.url; };
}

function setupNotifyButton() {
  const btn = document.getElementById("notify-btn");
  const state = document.querySelector("[data-notify-state]");
  const show = () => {
    if (!("Notification" in window)) { if (state) state.textContent = "This browser has no notifications."; return; }
    if (btn) btn.hidden = Notification.permission !== "default";
    if (state) state.textContent = { granted: "Allowed in this browser.", denied: "Blocked in this browser's site settings." }[Notification.permission] || "";
  };
  show();
  if (btn) btn.addEventListener("click", async () => { await Notification.requestPermission(); show(); });
}

function renderHit(ev) {
  const li = el("li", { class: "ev " + ev.label_class, "data-event": String(ev.id) });
  const head = el("p");
  head.append(el("span", { class: "badge " + ev.label_class }, ev.label_words));
  head.append(" ");
  // The server's words for what happened (reasons.event_words): a person's act
  // reads as a sentence, anything else is set apart so a prefetch never
  // reads as "opened".
  const words = ev.what || ev.kind;
  const own = ev.label_class === "human" || ev.kind === "reply" || ev.kind === "reminder";
  const verb = (own ? "" : "— ") + words.charAt(0).toLowerCase() + words.slice(1);
  const who = el("a", { href: "/messages/" + ev.message_id }, ev.recipient || ("message " + ev.message_id));
  head.append(who, " " + verb + " ");
  head.append(timeEl(ev.at));
  if (ev.first_open) { head.append(" "); head.append(el("strong", {}, "first open")); }
  li.append(head);
  if (ev.subject) li.append(el("p", { class: "muted small" }, ev.subject));
  if (ev.why && ev.why.length) li.append(el("p", { class: "small" }, ev.why.join(" ")));
  return li;
}

let source = null;
const listeners = [];

function subscribe(fn, after) {
  listeners.push(fn);
  if (source) return;
  source = new EventSource("/live/stream" + (after != null ? "?after=" + after : ""));
  source.addEventListener("hit", (msg) => {
    const ev = JSON.parse(msg.data);
    for (const f of listeners) f(ev);
  });
  const status = document.getElementById("feed-status");
  source.onopen = () => { if (status) status.textContent = "connected"; };
  source.onerror = () => { if (status) status.textContent = "reconnecting…"; };
}

// The feed opens on the last 50 hits (matching its filters), then streams
// from the newest of them: no gap and no repeat between the two.
async function setupFeed() {
  const feed = document.querySelector("[data-live-feed]");
  if (!feed) return;
  const only = feed.getAttribute("data-message");
  const cls = feed.getAttribute("data-label") || "";
  const campaign = feed.getAttribute("data-campaign") || "";
  const empty = document.getElementById("feed-empty");
  const matches = (ev) => (!only || String(ev.message_id) === only)
    && (!cls || ev.label_class === cls)
    && (!campaign || String(ev.campaign_id) === campaign);
  for (const s of document.querySelectorAll("#feed-filters select")) {
    s.addEventListener("change", () => s.form.submit());
  }
  let after = null;
  if (!only) {
    const q = new URLSearchParams({ limit: "50" });
    if (cls) q.set("label", cls);
    if (campaign) q.set("campaign", campaign);
    try {
      const r = await fetch("/live/recent?" + q, { headers: { Accept: "application/json" } });
      if (r.ok) {
        const got = await r.json();
        for (const ev of got.events) feed.append(renderHit(ev));
        if (got.events.length && empty) empty.hidden = true;
        after = got.after;
      }
    } catch (e) { after = null; }
  }
  subscribe((ev) => {
    alertFor(ev);
    if (!matches(ev)) return;
    feed.prepend(renderHit(ev));
    if (empty) empty.hidden = true;
    while (feed.children.length > 100) feed.lastChild.remove();
  }, after);
}

function setupActivation() {
  const box = document.getElementById("activation");
  if (!box) return;
  const mid = box.getAttribute("data-message");
  // From the newest event when the page was made: no gap before the stream connects.
  const after = box.getAttribute("data-after") || null;
  subscribe((ev) => {
    alertFor(ev);
    if (String(ev.message_id) !== mid) return;
    const compose = (ev.reasons || []).includes("self:compose_time");
    const text = compose
      ? "Activation fetch seen " + when(ev.at) + ": your compose window loaded the pixel. Counted as you, not as an open."
      : "Hit " + when(ev.at) + ": " + ev.label_words + ".";
    box.append(el("p", { class: compose ? "activated" : "" }, text));
  }, after);
}

function say(button, text) {
  const status = button.parentElement.querySelector(".status") || document.getElementById("copy-status");
  if (status) status.textContent = text;
}

// Fallback for browsers without ClipboardItem: copy a rendered selection,
// which mail compose windows paste as an image, not as text.
function copyBySelection(html) {
  const box = el("div", { contenteditable: "true", "aria-hidden": "true" });
  box.innerHTML = html;
  box.style.position = "fixed"; box.style.left = "-9999px";
  document.body.append(box);
  const range = document.createRange();
  range.selectNodeContents(box);
  const sel = window.getSelection();
  sel.removeAllRanges(); sel.addRange(range);
  const ok = document.execCommand("copy");
  sel.removeAllRanges(); box.remove();
  return ok;
}

async function copyHtml(button) {
  const src = document.getElementById(button.getAttribute("data-copy-html"));
  const html = src.value;
  try {
    if (!navigator.clipboard || typeof ClipboardItem === "undefined") throw new Error("no ClipboardItem");
    await navigator.clipboard.write([new ClipboardItem({
      "text/html": new Blob([html], { type: "text/html" }),
      "text/plain": new Blob([html], { type: "text/plain" }),
    })]);
    say(button, "Copied. Paste it into your email.");
  } catch (e) {
    say(button, copyBySelection(html) ? "Copied. Paste it into your email." : "Copy failed: select the code and copy it.");
  }
}

async function copyText(button) {
  const src = document.getElementById(button.getAttribute("data-copy-text"));
  try { await navigator.clipboard.writeText(src.value); }
  catch (e) { src.select(); document.execCommand("copy"); }
  button.textContent = "Copied";
}

// On phones (app.css, max-width 640px) a table.cards row is a stacked card:
// each cell is labelled with its column's header.
function cardTables() {
  for (const t of document.querySelectorAll("main table")) {
    const heads = Array.from(t.querySelectorAll("thead th"),
      (th) => (th.querySelector(".sr") ? "" : th.textContent.trim()));
    if (heads.length < 4) continue;
    t.classList.add("cards");
    for (const tr of t.querySelectorAll("tbody tr")) {
      let i = 0;
      for (const cell of tr.children) {
        const span = Number(cell.getAttribute("colspan") || 1);
        if (span === 1 && heads[i] && cell.getAttribute("scope") !== "row") cell.setAttribute("data-label", heads[i]);
        i += span;
      }
    }
  }
}

// Pages without a feed still notify (signed in, permission given).
function setupAlerts() {
  if (document.querySelector("[data-live-feed], #activation")) return;
  if (!alertPrefs() || !("Notification" in window) || Notification.permission !== "granted") return;
  subscribe(alertFor);
}

document.addEventListener("DOMContentLoaded", () => {
  if ("serviceWorker" in navigator && document.documentElement.hasAttribute("data-notify")) {
    navigator.serviceWorker.register("/sw.js").catch(() => {});
  }
  setupNotifyButton();
  setupAlerts();
  setupZone();
  refreshTimes(false);
  setInterval(() => refreshTimes(false), 30000);
  cardTables();
  setupFeed();
  setupActivation();
  for (const b of document.querySelectorAll("[data-copy-html]")) b.addEventListener("click", () => copyHtml(b));
  for (const b of document.querySelectorAll("[data-copy-text]")) b.addEventListener("click", () => copyText(b));
});
