/* Every patient page: the service worker, "new version, reload", install help, and the outbox panel
 * that shows each check-in still on this phone ("saved on this phone") until it is "sent".
 * Pages work without this script; it only adds offline use and status.
 */
/* global Outbox */
(function () {
  "use strict";

  var dataNode = document.getElementById("page-data");
  var data = dataNode ? JSON.parse(dataNode.textContent) : { strings: {} };
  var t = data.strings;
  var flushing = null;

  function $(id) { return document.getElementById(id); }

  var pending = [];
  function announce(text) {
    var live = $("live-status");
    if (!live || !text) return;
    // Messages close together are read as one, none overwriting another; clearing first lets the
    // same message be announced twice in a row.
    pending.push(text);
    if (pending.length > 1) return;
    window.setTimeout(function () {
      live.textContent = "";
      live.textContent = pending.join(" ");
      pending = [];
    }, 100);
  }

  /* In the patient's zone: the page's, or the one the entry was saved with (the offline page has
   * none: it holds no link). The phone's own zone only when neither is known. */
  function formatTime(iso, zone) {
    try {
      return new Intl.DateTimeFormat(data.lang, {
        dateStyle: "medium", timeStyle: "short", timeZone: data.timezone || zone || undefined,
      }).format(new Date(iso));
    } catch (e) {
      return new Date(iso).toLocaleString();
    }
  }

  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, key) { return String(values[key]); });
  }

  /* ---- the outbox panel -------------------------------------------------------------------- */

  function render() {
    var panel = $("outbox");
    if (!panel || !window.indexedDB) return Promise.resolve();
    return Outbox.list().then(function (entries) {
      var list = $("outbox-list");
      list.textContent = "";
      entries.forEach(function (entry) {
        var item = document.createElement("li");
        item.className = "card outbox-" + entry.state;
        var line = document.createElement("p");
        line.textContent = fill(t.entry, {
          time: formatTime(entry.body.recorded_at, entry.timezone), score: entry.body.soreness,
        });
        var state = document.createElement("p");
        state.className = "state";
        if (entry.state === "rejected") {
          state.textContent = t["rejected_" + entry.error] || t.rejected;
          var remove = document.createElement("button");
          remove.type = "button";
          remove.textContent = t.remove;
          remove.setAttribute("aria-label", t.remove + ": " + line.textContent);
          remove.addEventListener("click", function () {
            Outbox.remove(entry.id).then(render).then(function () {
              announce(t.removed);
              var heading = $("outbox-h");
              var main = document.getElementById("main");
              // The button is gone: keep keyboard focus near where it was.
              ($("outbox").hidden ? main : heading).focus();
            });
          });
          item.append(line, state, remove);
        } else {
          state.textContent = t.saved;
          item.append(line, state);
        }
        list.append(item);
      });
      panel.hidden = entries.length === 0;
    });
  }

  /* Send what is waiting. Safe to call often: one flush at a time, and the server ignores replays.
   * A call during a flush runs one more flush after it, so an entry saved meanwhile is sent too. */
  var again = null;
  function flush() {
    if (!window.indexedDB) return Promise.resolve(null);
    if (flushing) {
      again = again || flushing.catch(function () {}).then(function () {
        again = null;
        return flush();
      });
      return again;
    }
    flushing = Outbox.flush(window.fetch.bind(window)).then(function (report) {
      flushing = null;
      return afterFlush(report);
    }, function (error) {
      flushing = null;
      throw error;
    });
    return flushing;
  }

  function afterFlush(report) {
    if (report.sent.length) {
      announce(fill(t.sent_count, { n: report.sent.length }));
      var worker = navigator.serviceWorker && navigator.serviceWorker.controller;
      if (worker) worker.postMessage({ type: "refresh-pages" });
    }
    if (report.rejected.length) announce(t.rejected);
    var notice = $("outbox-notice");
    if (notice) {
      notice.textContent = report.unauthorized ? t.unauthorized : "";
      notice.hidden = !report.unauthorized;
    }
    document.dispatchEvent(new CustomEvent("outbox:flushed", { detail: report }));
    return render().then(function () { return report; });
  }

  /* ---- the service worker and updates ------------------------------------------------------ */

  function offerUpdate(worker) {
    var banner = $("update-banner");
    if (!banner || !worker) return;
    banner.hidden = false;
    announce(banner.querySelector("p").textContent);
    $("update-reload").addEventListener("click", function () {
      var reloading = false;
      navigator.serviceWorker.addEventListener("controllerchange", function () {
        if (reloading) return;
        reloading = true;
        window.location.reload();
      });
      worker.postMessage({ type: "skip-waiting" });
    }, { once: true });
  }

  function registerWorker() {
    if (!("serviceWorker" in navigator)) return;
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).then(function (registration) {
      // A waiting worker with a page already controlled means a new release is ready.
      if (registration.waiting && navigator.serviceWorker.controller) offerUpdate(registration.waiting);
      registration.addEventListener("updatefound", function () {
        var next = registration.installing;
        if (!next) return;
        next.addEventListener("statechange", function () {
          if (next.state === "installed" && navigator.serviceWorker.controller) offerUpdate(next);
        });
      });
    }).catch(function () { /* no worker (private mode, old browser): pages still work online */ });
    navigator.serviceWorker.addEventListener("message", function (event) {
      if (event.data && event.data.type === "outbox") afterFlush(event.data.report);
    });
  }

  /* The copies kept for offline use must match this page's language and visit: after a language
   * switch, or a new visit's link, ask the worker to fetch them all again (once). Otherwise an
   * offline check-in could be made on the previous visit's page. */
  function keepPagesCurrent() {
    if (!("serviceWorker" in navigator) || !window.localStorage || !data.visit_id) return;
    if (!navigator.onLine) return; // a page from the offline copies says nothing new
    var current = data.lang + " " + data.visit_id;
    var kept = localStorage.getItem("companion-pages");
    if (kept === current) return;
    navigator.serviceWorker.ready.then(function (registration) {
      // The first install fetches the pages itself; later, only a change needs a refresh.
      if (kept && registration.active) registration.active.postMessage({ type: "refresh-pages" });
      localStorage.setItem("companion-pages", current);
    });
  }

  function requestBackgroundSync() {
    if (!("serviceWorker" in navigator)) return;
    navigator.serviceWorker.ready.then(function (registration) {
      if (registration.sync) return registration.sync.register("outbox");
      return undefined;
    }).catch(function () { /* optional: pages flush on their own */ });
  }

  /* ---- install help ------------------------------------------------------------------------ */

  function installHelp() {
    var button = $("install-button");
    var deferred = null;
    window.addEventListener("beforeinstallprompt", function (event) {
      event.preventDefault(); // show our own button instead of the browser's mini bar
      deferred = event;
      if (button) button.hidden = false;
    });
    if (button) {
      button.addEventListener("click", function () {
        if (!deferred) return;
        deferred.prompt();
        deferred.userChoice.then(function () { deferred = null; button.hidden = true; });
      });
    }
    var ios = /iphone|ipad|ipod/i.test(navigator.userAgent);
    var standalone = window.matchMedia("(display-mode: standalone)").matches || navigator.standalone;
    var iosHelp = $("ios-install");
    if (iosHelp && ios && !standalone) iosHelp.hidden = false;
  }

  /* The guide may be an offline copy from hours ago: say how long ago the visit was as of now. */
  function refreshVisitTime() {
    var node = $("visit-since");
    if (!node || !window.Intl || !Intl.RelativeTimeFormat || !t.visit_was) return;
    var hours = (Date.now() - Date.parse(node.getAttribute("data-performed-at"))) / 3600000;
    if (isNaN(hours) || hours < 1) return;
    var words = new Intl.RelativeTimeFormat(data.lang, { numeric: "always" });
    var when = hours < 48 ? words.format(-Math.floor(hours), "hour")
      : words.format(-Math.floor(hours / 24), "day");
    node.textContent = fill(t.visit_was, { when: when });
  }

  window.Companion = {
    data: data, flush: flush, render: render, announce: announce, fill: fill,
    formatTime: formatTime, requestBackgroundSync: requestBackgroundSync,
  };

  refreshVisitTime();
  // After the page has loaded, not beside it: the worker's install fetches the same static files,
  // and started early it races the page's own requests past the browser's cache and fetches them
  // again (a first visit then weighs several KB more, over its 100 KB budget on a busy phone).
  if (document.readyState === "complete") registerWorker();
  else window.addEventListener("load", registerWorker, { once: true });
  keepPagesCurrent();
  installHelp();
  render().then(flush).catch(function () { /* IndexedDB unavailable: the form posts directly */ });
  window.addEventListener("online", function () { flush(); });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") flush();
  });
})();
