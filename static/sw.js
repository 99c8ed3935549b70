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
var PAGES = "pages"; // survives releases: the patient's last synced pages (health data)
var SHELL = "shell"; // the offline page: no health data, so it outlives any link

function cacheNameFor(url) {
  return url === BUILD.offline ? SHELL : PAGES;
}

/* A page fetched earlier must never overwrite one fetched later (say, the previous visit's page
 * arriving after the new visit's): each fetch takes a number, and only a newer one is stored. */
var fetchNumber = 0;
var storedNumber = {};
function keep(url, number, response) {
  if (number < (storedNumber[url] || 0)) return Promise.resolve();
  storedNumber[url] = number;
  return caches.open(cacheNameFor(url)).then(function (cache) { return cache.put(url, response); });
}

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

/* Fetch the offline copies of the patient pages again (new language, new visit, new check-ins).
 * A page that cannot be fetched keeps its previous copy; a link that no longer works removes every
 * kept page, since they hold this episode's health data. */
function refreshPages(urls) {
  return Promise.all(urls.map(function (url) {
    var number = ++fetchNumber;
    return fetch(url, { credentials: "same-origin", cache: "no-store", redirect: "error" })
      .then(function (response) {
        if (response.ok) return keep(url, number, response);
        if (response.status === 401) return forgetPages();
        return undefined;
      })
      .catch(function () { return undefined; });
  }));
}

function forgetPages() {
  return caches.delete(PAGES);
}

/* A kept page older than the longest episode belongs to a link that has ended. */
function tooOld(response) {
  var fetched = Date.parse(response.headers.get("Date") || "");
  return !isNaN(fetched) && Date.now() - fetched > BUILD.keep_days * 86400000;
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
      }).catch(function () {
        // Offline, a page kept from an older release asks for older versions: the current
        // version of the same file is the best answer there is.
        return caches.match(request, { ignoreSearch: true }).then(function (other) {
          if (other) return other;
          throw new TypeError("offline and not kept: " + url.pathname);
        });
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
      caches.open(SHELL).then(function (cache) { cache.put(url.pathname, copy); });
      return response;
    }).catch(function () { return caches.match(url.pathname); }));
  }
});

function networkFirst(request, url) {
  var key = url.pathname; // never the query string: stored pages are keyed by path alone
  var kept = BUILD.pages.indexOf(key) !== -1;
  var number = ++fetchNumber;
  return fetch(request).then(function (response) {
    if (kept && response.ok && !response.redirected) {
      keep(key, number, response.clone());
    } else if (response.status === 401) {
      forgetPages();
    } else if (response.status >= 500) {
      // A proxy or server error: the kept copy is more use to the patient than an error page.
      return fromKept(key).then(function (hit) { return hit || response; });
    }
    return response;
  }).catch(function () {
    return fromKept(key).then(function (hit) {
      return hit || caches.open(SHELL).then(function (cache) { return cache.match(BUILD.offline); });
    });
  });
}

function fromKept(key) {
  return caches.open(cacheNameFor(key)).then(function (cache) {
    return cache.match(key).then(function (hit) {
      if (hit && tooOld(hit)) return forgetPages().then(function () { return undefined; });
      return hit;
    });
  });
}

/* Background Sync (Chromium only): send the outbox even when no page is open. Pages also flush on
 * load, on `online` and on `visibilitychange`, so nothing depends on this event. */
self.addEventListener("sync", function (event) {
  if (event.tag !== "outbox") return;
  // Rejecting tells the browser to try this sync again later (with its own backoff).
  event.waitUntil(flushAndTell().then(function (report) {
    if (report.retry) throw new Error("outbox not sent yet");
  }));
});

function flushAndTell() {
  return Outbox.flush(fetch.bind(self)).then(function (report) {
    return self.clients.matchAll({ type: "window" }).then(function (clients) {
      clients.forEach(function (client) { client.postMessage({ type: "outbox", report: report }); });
      return report.sent.length ? refreshPages(BUILD.pages) : undefined;
    }).then(function () { return report; });
  });
}
