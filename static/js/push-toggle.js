/* The "web push on this device" control, shared by the patient's Reminders page (reminders.js) and
 * the therapist's Notifications page (notifications.js). It says honestly which state this browser
 * is in: on, off, blocked by the browser, not supported, iPhone outside the Home Screen app, or
 * failed (and why). Notification permission is asked only from the tap on "Turn on": browsers, and
 * iPhone always, ignore or punish a question that no tap started.
 *
 * The page has the elements #push (the section, with data-state), #push-h, #push-state, #push-on,
 * #push-off, #push-blocked, #push-ios and #push-nojs (hidden here: this script works), and gives:
 *   strings   its texts: push_on, push_off, push_failed_<code>, ... and optionally push_failed_hint
 *   client    what "on" means for it:
 *               subscribe(pushManager, fetch)     subscribe and register with the server
 *               unsubscribe(subscription, fetch)  forget it on the server and in the browser
 *               check(subscription, fetch)        a subscription the browser holds: is it on for
 *                                                 this page? resolves true or false, or rejects
 *                                                 with a coded error (push.js)
 *   announce  optional: tell screen readers (else #push-state should be a live region itself)
 *   shown     optional: called with each state, for the page's own extras (the calendar offer)
 *
 * Turning on gives up after TURN_ON_LIMIT_MS ("failed", code "timeout"): a push service that never
 * answers must not leave "Turning ... on" on the screen for ever.
 */
(function (root) {
  "use strict";

  /* How long turning on may take once permission is given: the service worker, the browser's push
   * service and our server together. The permission question is not counted: it waits for the
   * person, who may read it in their own time; the limit is for machines that do not answer. */
  var TURN_ON_LIMIT_MS = 20000;

  /* `work`, or a rejection with the code "timeout" if it has not settled within `ms`. The work
   * itself goes on (a push service cannot be told to stop): see lateAnswer. */
  function withinLimit(work, ms) {
    return new Promise(function (resolve, reject) {
      var timer = window.setTimeout(function () {
        var error = new Error("no answer within " + ms + " ms");
        error.code = "timeout";
        reject(error);
      }, ms);
      work.then(function (value) {
        window.clearTimeout(timer);
        resolve(value);
      }, function (error) {
        window.clearTimeout(timer);
        reject(error);
      });
    });
  }

  function $(id) { return document.getElementById(id); }

  function isIOS() {
    // iPadOS presents itself as a Mac; only its touch screen gives it away.
    return /iphone|ipad|ipod/i.test(navigator.userAgent) ||
      (navigator.platform === "MacIntel" && navigator.maxTouchPoints > 1);
  }

  function supported() {
    return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
  }

  /* The worker must be active before it can subscribe; on a first visit it may still be installing.
   * A browser that cannot run it (private mode in some browsers) would never be ready. */
  function workerReady() {
    return new Promise(function (resolve, reject) {
      var timer = window.setTimeout(function () {
        var error = new Error("service worker not ready");
        error.code = "worker";
        reject(error);
      }, 20000);
      navigator.serviceWorker.ready.then(function (registration) {
        window.clearTimeout(timer);
        resolve(registration);
      });
    });
  }

  /* Notification.requestPermission() returns a promise in current browsers and takes a callback in
   * older Safari; both are handled. */
  function askPermission() {
    return new Promise(function (resolve) {
      var asked = Notification.requestPermission(resolve);
      if (asked && typeof asked.then === "function") {
        asked.then(resolve, function () { resolve("default"); });
      }
    });
  }

  function start(options) {
    var panel = $("push");
    if (!panel) return;
    var t = options.strings;
    var client = options.client;
    var stateNode = $("push-state");
    var onButton = $("push-on");
    var offButton = $("push-off");
    var busy = false;
    var fetchFn = window.fetch.bind(window);

    /* What is shown for each state: the words, which button, which help. */
    function show(state, detail) {
      var text = {
        checking: t.push_checking,
        on: t.push_on,
        off: t.push_off,
        dismissed: t.push_dismissed,
        turning_on: t.push_turning_on,
        turning_off: t.push_turning_off,
        blocked: t.push_blocked,
        unsupported: t.push_unsupported,
        ios: t.push_ios,
        failed: [t.push_failed, t["push_failed_" + detail] || t.push_failed_server,
          t.push_failed_hint].filter(Boolean).join(" "),
        off_failed: t.push_off_failed,
      }[state];
      var working = state === "turning_on" || state === "turning_off" || state === "checking";
      panel.setAttribute("data-state", state);
      panel.setAttribute("aria-busy", working ? "true" : "false");
      stateNode.textContent = text;
      stateNode.hidden = false;
      onButton.hidden = ["off", "dismissed", "blocked", "failed", "turning_on"].indexOf(state) === -1;
      offButton.hidden = ["on", "off_failed", "turning_off"].indexOf(state) === -1;
      $("push-blocked").hidden = state !== "blocked";
      $("push-ios").hidden = state !== "ios";
      if (options.shown) options.shown(state);
      if (options.announce && state !== "checking") options.announce(text);
    }

    function turnOn() {
      if (busy) return;
      busy = true;
      // Asked here, synchronously inside the tap, and nowhere else.
      var permission = Notification.permission === "granted"
        ? Promise.resolve("granted") : askPermission();
      show("turning_on");
      permission.then(function (answer) {
        if (answer === "denied") return show("blocked");
        if (answer !== "granted") return show("dismissed");
        var work = workerReady().then(function (registration) {
          return client.subscribe(registration.pushManager, fetchFn);
        });
        return withinLimit(work, TURN_ON_LIMIT_MS).then(function () { show("on"); }, function (error) {
          if (error && error.code === "timeout") lateAnswer(work);
          throw error;
        });
      }).catch(function (error) {
        show("failed", error && error.code);
      }).then(function () {
        busy = false;
        // The pressed button is hidden now: keep keyboard and screen-reader focus in this section.
        if (onButton.hidden) $("push-h").focus();
      });
    }

    /* Work that ran past the limit and then succeeded did turn this phone on (the server has
     * it and will send to it): say so rather than leave "could not be turned on" standing, unless
     * something else has started since. A late failure changes nothing: "failed" is shown. */
    function lateAnswer(work) {
      work.then(function () {
        if (busy || panel.getAttribute("data-state") !== "failed") return;
        var hadFocus = document.activeElement === onButton;
        show("on");
        if (hadFocus) $("push-h").focus();
      }, function () {});
    }

    function turnOff() {
      if (busy) return;
      busy = true;
      show("turning_off");
      workerReady().then(function (registration) {
        return registration.pushManager.getSubscription();
      }).then(function (subscription) {
        return subscription ? client.unsubscribe(subscription, fetchFn) : null;
      }).then(function () {
        show("off");
      }, function () {
        show("off_failed");
      }).then(function () {
        busy = false;
        if (offButton.hidden) $("push-h").focus();
      });
    }

    /* The state on arrival, without asking anything. */
    function initialState() {
      if (isIOS() && navigator.standalone !== true) return show("ios");
      if (!supported()) return show("unsupported");
      if (Notification.permission === "denied") return show("blocked");
      show("checking");
      workerReady().then(function (registration) {
        return registration.pushManager.getSubscription();
      }).then(function (subscription) {
        if (!subscription || Notification.permission !== "granted") return show("off");
        return client.check(subscription, fetchFn).then(function (on) {
          show(on ? "on" : "off");
        });
      }).catch(function (error) {
        show("failed", error && error.code);
      });
    }

    $("push-nojs").hidden = true;
    onButton.addEventListener("click", turnOn);
    offButton.addEventListener("click", turnOff);
    initialState();
  }

  root.PushToggle = { start: start, TURN_ON_LIMIT_MS: TURN_ON_LIMIT_MS };
})(self);
