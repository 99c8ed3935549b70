/* The therapist's Notifications page: alerts (web push) on or off for this device, with the control
 * shared with the patients' Reminders page (push-toggle.js). What is the therapist's own:
 * - the service worker is registered here (therapists never open the patient pages that register
 *   it); it shows the alerts and never keeps a therapist page (static/sw.js);
 * - the therapist client of push.js: the session's CSRF token in a header, and the device's renewal
 *   token kept for the service worker;
 * - "on" means this browser's subscription is one of the devices listed on this page for the
 *   therapist signed in: removed from the list (perhaps from another device), or turned on by a
 *   colleague in this browser, it is "off" here, and "Turn on" makes it theirs.
 * Without this script the list of devices and its Remove buttons still work.
 */
/* global Push, PushToggle */
(function () {
  "use strict";

  var dataNode = document.getElementById("page-data");
  if (!dataNode || !window.PushToggle || !document.getElementById("push")) return;
  var data = JSON.parse(dataNode.textContent);
  var client = Push.therapist(data.csrf_token);

  /* Point out this browser's row in the list of devices. */
  function markThisDevice(deviceId) {
    var rows = document.querySelectorAll("[data-device]");
    Array.prototype.forEach.call(rows, function (row) {
      var mark = row.querySelector(".this-device");
      if (mark) mark.hidden = row.getAttribute("data-device") !== deviceId;
    });
  }

  /* The list of devices as the server has it now, after alerts were turned on or off here. */
  function refreshList() {
    return fetch(window.location.pathname, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok || response.redirected) return undefined;
      return response.text().then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("devices");
        var current = document.getElementById("devices");
        if (fresh && current) current.replaceWith(fresh);
      });
    }).catch(function () { /* the list stays as it was; the control's state is still right */ });
  }

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(function () {
      /* no worker (private mode, old browser): the control says so after its wait */
    });
  }

  PushToggle.start({
    strings: data.strings,
    client: {
      subscribe: function (pushManager, fetchFn) {
        return client.subscribe(pushManager, fetchFn).then(function (subscription) {
          return Promise.all([Push.Device.load(), refreshList()]).then(function (found) {
            var record = found[0];
            if (record) data.devices.push(record.id);
            markThisDevice(record && record.id);
            return subscription;
          });
        });
      },
      unsubscribe: function (subscription, fetchFn) {
        return client.unsubscribe(subscription, fetchFn).then(function (serverError) {
          return refreshList().then(function () {
            markThisDevice(null);
            return serverError;
          });
        });
      },
      check: function (subscription) {
        return Push.Device.load().then(function (record) {
          var on = !!record && record.endpoint === subscription.endpoint &&
            data.devices.indexOf(record.id) !== -1;
          markThisDevice(on ? record.id : null);
          return on;
        });
      },
    },
    shown: function (state) {
      if (state === "off") markThisDevice(null);
    },
  });
})();
