// mailbeacon service worker: makes the dashboard installable as an app, shows
// its notifications through the browser (they outlive a hidden or minimised
// tab, and Android only allows them this way), opens the message on a click,
// and says "offline" instead of the browser's error page. Pages are never
// cached: they show recipients' activity (render.py sends no-store).
"use strict";

const OFFLINE = `<!doctype html><html lang="en"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Offline · mailbeacon</title>
<body style="font:16px system-ui,sans-serif;padding:1.5rem;max-width:32rem">
<h1>mailbeacon is out of reach</h1><p>This device is offline or the server is down.
Hits are still recorded by the server when it is up; reload to try again.</p></body></html>`;

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("fetch", (event) => {
  if (event.request.mode !== "navigate") return;  // everything else: the network, untouched
  event.respondWith(fetch(event.request).catch(() =>
    new Response(OFFLINE, { status: 503, headers: { "Content-Type": "text/html; charset=utf-8" } })));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || "/";
  event.waitUntil((async () => {
    const wins = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const w of wins) {
      if ("focus" in w) { await w.focus(); return w.navigate(url); }
    }
    return self.clients.openWindow(url);
  })());
});
