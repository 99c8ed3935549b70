/* The patient app's service worker, served at /sw.js by companion/pwa.py as one script:
 * `self.BUILD`, then static/js/outbox.js (the outbox, shared with the pages), then this file.
 *   BUILD.release        one version for this shell; a new one installs beside the old and waits
 *   BUILD.assets         versioned static URLs (cache-first: a new release is a new URL)
 *   BUILD.install_pages  pages fetched at install: the guide, the check-in, the offline page
 *   BUILD.pages          every page kept for offline use (network-first, refreshed on each visit)
 *   BUILD.offline        the page shown for anything not kept
 *   BUILD.home           the guide: what a notification opens when its own page will not do
 *   BUILD.icon, .badge   notification images
 *   BUILD.notice         {lang: {title, body}}: shown for a push without a usable message
 *   BUILD.therapist_home, BUILD.therapist_notice: the same two for a therapist's alert
 * Then static/js/push.js (Push), so the worker can subscribe again by itself.
 * Only patient pages and static files are handled. Therapist pages and the API always go to the
 * network and are never stored (they hold health data and are sent no-store), although this worker
 * also controls the therapist pages and shows their alerts.
 */
/* global BUILD, Outbox, Push */
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

/* The therapist pages an alert may open: the home page, the review queue, a visit. Matched by the
 * push handler only; the fetch handler below never touches them. */
var THERAPIST_PAGE = /^\/(?:review)?$|^\/visits\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function isTherapistPage(url) {
  return THERAPIST_PAGE.test(url.pathname);
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") return;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;

  // The clinic's logo (/logo/<clinic>.png?v=...) is versioned like a static file, so it is kept
  // the same way: a patient page kept offline still shows it.
  if (url.pathname.indexOf("/static/") === 0 || url.pathname.indexOf("/logo/") === 0) {
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

/* ---- reminders (web push) ------------------------------------------------------------------ */

/* The language of the guide kept on this phone, which follows the patient's choice; the browser's
 * own language when nothing is kept yet. Only used when a push carries no usable words. */
function patientLanguage() {
  return caches.open(PAGES)
    .then(function (cache) { return cache.match(BUILD.home); })
    .then(function (kept) { return kept ? kept.text() : ""; })
    .then(function (html) {
      var found = /<html[^>]*\blang="([a-zA-Z-]+)"/.exec(html);
      var lang = found ? found[1] : String(self.navigator.language || "");
      lang = lang.slice(0, 2).toLowerCase();
      return BUILD.notice[lang] ? lang : BUILD.default_lang;
    })
    .catch(function () { return BUILD.default_lang; });
}

function words(value) {
  return typeof value === "string" && value.trim() ? value : null;
}

/* A patient's notification opens only a patient page of our own, a therapist's only one of the
 * therapist pages above: a tap must never lead anywhere else. Anything else opens the home of the
 * same side (the guide is kept for offline use, so a patient's tap never shows a blank page). */
function pageToOpen(value, audience) {
  var therapist = audience === "therapist";
  try {
    var url = new URL(value, self.location.origin);
    if (url.origin === self.location.origin && (therapist ? isTherapistPage(url) : isPatientPage(url))) {
      return url.href;
    }
  } catch (e) { /* not a URL */ }
  return new URL(therapist ? BUILD.therapist_home : BUILD.home, self.location.origin).href;
}

function readPush(data) {
  try {
    var message = data ? data.json() : null;
    return message && typeof message === "object" ? message : {};
  } catch (e) {
    return {}; // not JSON (or not decryptable into it): the neutral text is shown instead
  }
}

/* Whose message this is. Ours say so ("audience"; patient messages of the first release do not,
 * and have a title). One that cannot be read belongs to whom this browser is registered for: a
 * therapist device keeps its record here (push.js); otherwise it is a patient's phone. */
function audienceOf(message) {
  if (typeof message.audience === "string") {
    return Promise.resolve(message.audience === "therapist" ? "therapist" : "patient");
  }
  if (words(message.title)) return Promise.resolve("patient");
  return Push.Device.load().then(function (record) { return record ? "therapist" : "patient"; })
    .catch(function () { return "patient"; });
}

/* A therapist's alert is in the language the device was set up in (the message says it); the
 * browser's own language when the message cannot be read. */
function therapistLanguage(message) {
  var lang = String(words(message.lang) || self.navigator.language || "").slice(0, 2).toLowerCase();
  return BUILD.therapist_notice[lang] ? lang : BUILD.default_lang;
}

/* Every push shows a notification: Safari revokes a subscription whose pushes show nothing. The
 * message carries no health data (design.md), only neutral words, a tag and the page to open. */
self.addEventListener("push", function (event) {
  var message = readPush(event.data);
  function show(audience, lang) {
    var notices = audience === "therapist" ? BUILD.therapist_notice : BUILD.notice;
    var fallback = notices[lang] || notices[BUILD.default_lang];
    return self.registration.showNotification(words(message.title) || fallback.title, {
      body: words(message.body) || fallback.body,
      // The reminder's or alert's id: a resend (delivery is at least once) replaces the one shown.
      tag: words(message.tag) || (audience === "therapist" ? "alert" : "reminder"),
      data: { url: pageToOpen(message.url, audience), audience: audience },
      icon: BUILD.icon,
      badge: BUILD.badge,
      lang: lang,
    });
  }
  event.waitUntil(audienceOf(message).then(function (audience) {
    if (audience === "therapist") return show(audience, therapistLanguage(message));
    return patientLanguage().then(function (lang) { return show(audience, lang); });
  }).catch(function () {
    return show("patient", BUILD.default_lang);
  }));
});

/* A tap: our window already on a page of the same side is brought forward and sent to the
 * notification's page (signed in by the patient cookie or the therapist's session; a therapist
 * whose session ended signs in first); otherwise a new window opens there. */
self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var data = event.notification.data || {};
  var audience = data.audience === "therapist" ? "therapist" : "patient";
  event.waitUntil(openPage(pageToOpen(data.url, audience), audience));
});

function openPage(url, audience) {
  return self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (windows) {
    var ours = windows.filter(function (client) {
      var where = new URL(client.url);
      if (where.origin !== self.location.origin) return false;
      // A therapist's window is any of ours outside the patient app (and its link pages).
      return audience === "therapist"
        ? !isPatientPage(where) && where.pathname.indexOf("/p/") !== 0
        : isPatientPage(where);
    });
    var target = ours.filter(function (client) { return client.url === url; })[0] || ours[0];
    if (!target) return self.clients.openWindow(url);
    // Focus first, while the tap still allows it; a browser that refuses does not stop the rest.
    var focused = target.focus().catch(function () { return target; });
    if (target.url === url) return focused;
    return focused.then(function () { return target.navigate(url); }).then(function (client) {
      return client || self.clients.openWindow(url);
    }, function () {
      // navigate() only works on a window this worker controls.
      return self.clients.openWindow(url);
    });
  });
}

/* The browser replaced (or dropped) the subscription: subscribe again and tell the server, so
 * reminders and alerts keep arriving without anyone doing anything. Whom it was for is not in the
 * event, so each side is tried on its own (one browser may serve both, and one failing must not
 * stop the other):
 * - a patient's phone registers with the patient cookie, as the Reminders page does;
 * - a therapist device proves itself with the renewal token it keeps (push.js, Push.Device): the
 *   therapist's session has usually ended by the time the browser does this, so a session-based
 *   registration would fail and alerts would silently stop.
 * Without a connection, or with an ended link or a removed device, nothing can be done here; the
 * Reminders and Notifications pages then show "off" and offer the button. */
self.addEventListener("pushsubscriptionchange", function (event) {
  var old = event.oldSubscription;
  var fetchFn = fetch.bind(self);
  var current = event.newSubscription ? Promise.resolve(event.newSubscription)
    : Push.browserSubscription(self.registration.pushManager, fetchFn);
  function quietly() { return undefined; }
  event.waitUntil(current.then(function (subscription) {
    var patient = Push.register(subscription, fetchFn).then(function () {
      if (old && old.endpoint && old.endpoint !== subscription.endpoint) {
        return Push.forget(old.endpoint, fetchFn);
      }
      return undefined;
    }).catch(quietly);
    return Promise.all([patient, Push.renewDevice(subscription, fetchFn).catch(quietly)]);
  }).catch(quietly));
});
