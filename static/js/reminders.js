/* The Reminders page: turn reminders (web push) on or off for this phone, with the control shared
 * with the therapists' Notifications page (push-toggle.js: every state said honestly, permission
 * asked only from the tap). What is the patient's own: the patient client of push.js, the outbox
 * page's live region for announcements, and the calendar offered whenever push cannot be had.
 * Without this script the page still offers the calendar, quiet hours and "fully recovered".
 */
/* global Push, PushToggle, Companion */
(function () {
  "use strict";

  if (!document.getElementById("push") || !window.Companion || !window.PushToggle) return;
  var calendar = document.getElementById("push-calendar");

  PushToggle.start({
    strings: Companion.data.strings,
    announce: Companion.announce,
    client: {
      subscribe: Push.subscribe,
      unsubscribe: Push.unsubscribe,
      /* A subscription the browser still holds is registered again (idempotent), so the server
       * knows it even after a new link or a lost request. */
      check: function (subscription, fetchFn) {
        return Push.register(subscription, fetchFn).then(function () { return true; }, function (error) {
          // No connection: the phone is subscribed and the server had it before; say "on".
          if (error.code === "offline") return true;
          throw error;
        });
      },
    },
    shown: function (state) {
      calendar.hidden = ["unsupported", "failed", "blocked"].indexOf(state) === -1;
    },
  });
})();
