/* The patient app's service worker, served at /sw.js by companion/pwa.py as one script:
 * `self.BUILD`, then static/js/outbox.js (the outbox, shared with the pages), then this file.
 *   BUILD.release        one version for this shell; a new one installs beside the old and waits
 *   BUILD.assets         versioned static URLs (cache-first: a new release is a new URL)
 *   BUILD.install_pages  pages fetched at install: the guide, the check-in, the offline page
 *   BUILD.pages          every page kept for offline use (network-first, refreshed on each visit)
 *   BUILD.offline        the page shown for anything not kept
 * Only patient pages and static files are handled. Clinic pages and the API always go to the network,
 * so nothing a therapist sees is ever stored on a device.
 */
/* global BUILD, Outbox */
"use strict";

var ASSETS = "assets-" + BUILD.release;
var PAGES = "pages"; // survives releases: it holds the patient's last synced pages

self.addEventListener("install", function (event) {
  event.waitUntil(
    caches.open(ASSETS).then(function (cache) { return cache.addAll(BUILD.assets); })
      .then(function () { return refreshPages(BUILD.install_pages); })
  );
  // No skipWaiting here: an open page would suddenly run old HTML against new scripts. The page
  // shows "new version, reload" and sends "skip-waiting" when the patient taps it.
});

self.addEventListener("activate", function (event) {
  event.waitUntil(
    caches.keys().then(function (names) {
      return Promise.all(names.filter(function (name) {
        return name.indexOf("assets-") === 0 && name !== ASSETS;
      }).map(function (name) { return caches.delete(name); }));
    }).then(function () { return self.clients.claim(); })
  );
});

self.addEventListener("message", function (event) {
  var type = event.data && event.data.type;
  if (type === "skip-waiting") self.skipWaiting();
  if (type === "refresh-pages") event.waitUntil(refreshPages(BUILD.pages));
  if (type === "flush") event.waitUntil(flushAndTell());
});

/* Fetch the offline copies of the patient pages again (new language, new check-ins). A page that
 * fails (no network, link no longer valid) keeps its previous copy, except that an invalid link
 * removes every stored page: the episode is over or was revoked. */
function refreshPages(urls) {
  return caches.open(PAGES).then(function (cache) {
    return Promise.all(urls.map(function (url) {
      return fetch(url, { credentials: "same-origin", cache: "no-store", redirect: "error" })
        .then(function (response) {
          if (response.ok) return cache.put(url, response);
          if (response.status === 401 && url !== BUILD.offline) return cache.delete(url);
          return undefined;
        })
        .catch(function () { return undefined; });
    }));
  });
}

function isPatientPage(url) {
  return url.pathname.indexOf("/me/") === 0;
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") return;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;

  if (url.pathname.indexOf("/static/") === 0) {
    event.respondWith(caches.match(request).then(function (hit) {
      return hit || fetch(request).then(function (response) {
        if (response.ok && url.searchParams.has("v")) {
          var copy = response.clone();
          caches.open(ASSETS).then(function (cache) { cache.put(request, copy); });
        }
        return response;
      });
    }));
    return;
  }

  if (request.mode === "navigate" && isPatientPage(url)) {
    event.respondWith(networkFirst(request, url));
    return;
  }

  if (url.pathname === "/manifest.webmanifest") {
    event.respondWith(fetch(request).then(function (response) {
      var copy = response.clone();
      caches.open(PAGES).then(function (cache) { cache.put(url.pathname, copy); });
      return response;
    }).catch(function () { return caches.match(url.pathname); }));
  }
});

function networkFirst(request, url) {
  var key = url.pathname; // never the query string: stored pages are keyed by path alone
  var kept = BUILD.pages.indexOf(key) !== -1;
  return fetch(request).then(function (response) {
    if (kept && response.ok && !response.redirected) {
      var copy = response.clone();
      caches.open(PAGES).then(function (cache) { cache.put(key, copy); });
    } else if (kept && response.status === 401) {
      caches.open(PAGES).then(function (cache) { cache.delete(key); });
    }
    return response;
  }).catch(function () {
    return caches.open(PAGES).then(function (cache) {
      return cache.match(key).then(function (hit) {
        return hit || cache.match(BUILD.offline);
      });
    });
  });
}

/* Background Sync (Chromium only): send the outbox even when no page is open. Pages also flush on
 * load, on `online` and on `visibilitychange`, so nothing depends on this event. */
self.addEventListener("sync", function (event) {
  if (event.tag === "outbox") event.waitUntil(flushAndTell());
});

function flushAndTell() {
  return Outbox.flush(fetch.bind(self)).then(function (report) {
    return self.clients.matchAll({ type: "window" }).then(function (clients) {
      clients.forEach(function (client) { client.postMessage({ type: "outbox", report: report }); });
      if (report.sent.length) return refreshPages(BUILD.pages);
      return undefined;
    });
  });
}
