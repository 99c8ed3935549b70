/* Web push for this phone: subscribe with the server's key and register the subscription with the
 * server, or undo both. Used by the Reminders page (reminders.js) and by the service worker (/sw.js
 * includes it), which subscribes again by itself when the browser replaces a subscription.
 *
 * Every failure is an Error with a `code` the page turns into words:
 *   offline       no answer from the server (no connection)
 *   unauthorized  the patient link ended or was replaced (401)
 *   not_allowed   the server refuses this browser's push service (422, allowlist)
 *   push_service  the browser could not subscribe (no push service, key mismatch, permission)
 *   server        any other answer from the server
 */
(function (root) {
  "use strict";

  var KEY_URL = "/api/v1/push/public-key";
  var SUBSCRIPTIONS_URL = "/api/v1/push-subscriptions";

  function failure(code, cause) {
    var error = new Error("push: " + code);
    error.code = code;
    error.cause = cause;
    return error;
  }

  /* The VAPID key arrives as base64url; subscribe() wants bytes (Safari takes no string form). */
  function keyBytes(base64url) {
    var base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(base64 + "===".slice((base64.length + 3) % 4));
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  function sameBytes(buffer, bytes) {
    if (!buffer) return false;
    var view = new Uint8Array(buffer);
    if (view.length !== bytes.length) return false;
    for (var i = 0; i < view.length; i += 1) if (view[i] !== bytes[i]) return false;
    return true;
  }

  function answer(response) {
    if (response.ok) return response;
    if (response.status === 401) throw failure("unauthorized");
    if (response.status === 422) throw failure("not_allowed");
    if (response.status === 404) throw failure("not_found");
    throw failure("server");
  }

  function send(fetchFn, url, options) {
    options.credentials = "same-origin"; // the patient cookie says whose phone this is
    return fetchFn(url, options).then(answer, function (error) { throw failure("offline", error); });
  }

  function callSubscriptions(fetchFn, method, body) {
    return send(fetchFn, SUBSCRIPTIONS_URL, {
      method: method,
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  function serverKey(fetchFn) {
    return send(fetchFn, KEY_URL, { method: "GET" })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        if (!data || typeof data.public_key !== "string") throw failure("server");
        return keyBytes(data.public_key);
      });
  }

  /* Tell the server about a subscription (idempotent: the same endpoint is stored once). */
  function register(subscription, fetchFn) {
    return callSubscriptions(fetchFn, "POST", subscription.toJSON());
  }

  /* Subscribe this browser and register it. A subscription made with another key (the server's
   * key was replaced) cannot be reused: subscribe() would refuse it, so it is dropped first. */
  function subscribe(pushManager, fetchFn) {
    return serverKey(fetchFn).then(function (key) {
      return pushManager.getSubscription().then(function (existing) {
        if (existing && !sameBytes(existing.options && existing.options.applicationServerKey, key)) {
          return existing.unsubscribe();
        }
        return undefined;
      }).then(function () {
        return pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
      }).catch(function (error) { throw failure("push_service", error); });
    }).then(function (subscription) {
      return register(subscription, fetchFn).then(function () { return subscription; });
    });
  }

  /* Forget an endpoint on the server; a failure is returned, not thrown (see unsubscribe). */
  function forget(endpoint, fetchFn) {
    return callSubscriptions(fetchFn, "DELETE", { endpoint: endpoint }).then(
      function () { return null; },
      function (error) { return error.code === "not_found" ? null : error; }
    );
  }

  /* Turn push off on this phone. The server is told first (the endpoint is needed for that), and the
   * browser unsubscribes even when the server could not be told: a dead subscription answers 410 to
   * the next reminder, and the server forgets it then. Resolves with the server's failure or null. */
  function unsubscribe(subscription, fetchFn) {
    return forget(subscription.endpoint, fetchFn).then(function (serverError) {
      return subscription.unsubscribe().then(function () { return serverError; });
    });
  }

  root.Push = {
    keyBytes: keyBytes, register: register, subscribe: subscribe, forget: forget,
    unsubscribe: unsubscribe,
  };
})(self);
