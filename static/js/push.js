/* Web push for this browser: subscribe with the server's key and register the subscription with the
 * server, or undo both. Used by the patient's Reminders page (reminders.js), the therapist's
 * Notifications page (notifications.js) and the service worker (/sw.js includes it), which
 * registers again by itself when the browser replaces a subscription.
 *
 * Two kinds of registration, one client each (`Push.client`):
 *   patient    POST/DELETE /api/v1/push-subscriptions, the patient cookie says whose phone it is
 *   therapist  POST/DELETE /settings/notifications/devices, the therapist's session plus its CSRF
 *              token; the answer carries a renewal token, kept in IndexedDB (`Push.Device`), with
 *              which the service worker re-registers the device when no one is signed in
 * `Push.register`, `.subscribe`, `.forget`, `.unsubscribe` are the patient client's.
 *
 * Every failure is an Error with a `code` the page turns into words:
 *   offline       no answer from the server (no connection)
 *   unauthorized  the patient link ended or was replaced, or the therapist was signed out (401)
 *   not_allowed   the server refuses this browser's push service (422, allowlist)
 *   not_found     the server has no such registration (404)
 *   push_service  the browser could not subscribe (no push service, key mismatch, permission)
 *   server        any other answer from the server
 */
(function (root) {
  "use strict";

  var KEY_URL = "/api/v1/push/public-key";
  var SUBSCRIPTIONS_URL = "/api/v1/push-subscriptions";
  var DEVICES_URL = "/settings/notifications/devices";
  var RENEW_URL = "/settings/notifications/devices/renew";

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
    // Our JSON routes never redirect: a redirect is the sign-in page after a session ended.
    if (response.redirected) throw failure("unauthorized");
    if (response.ok) return response;
    if (response.status === 401) throw failure("unauthorized");
    if (response.status === 422) throw failure("not_allowed");
    if (response.status === 404) throw failure("not_found");
    throw failure("server");
  }

  function send(fetchFn, url, options) {
    options.credentials = "same-origin"; // the patient cookie or the therapist's session
    return fetchFn(url, options).then(answer, function (error) { throw failure("offline", error); });
  }

  function sendJSON(fetchFn, url, method, body, headers) {
    var all = { "Content-Type": "application/json", Accept: "application/json" };
    Object.keys(headers || {}).forEach(function (name) { all[name] = headers[name]; });
    return send(fetchFn, url, { method: method, headers: all, body: JSON.stringify(body) });
  }

  function serverKey(fetchFn) {
    return send(fetchFn, KEY_URL, { method: "GET" })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        if (!data || typeof data.public_key !== "string") throw failure("server");
        return keyBytes(data.public_key);
      });
  }

  /* This browser's subscription with the server's key, made now if needed; the server is not told.
   * A subscription made with another key (the server's key was replaced) cannot be reused:
   * subscribe() would refuse it, so it is dropped first. */
  function browserSubscription(pushManager, fetchFn) {
    return serverKey(fetchFn).then(function (key) {
      return pushManager.getSubscription().then(function (existing) {
        if (existing && !sameBytes(existing.options && existing.options.applicationServerKey, key)) {
          return existing.unsubscribe();
        }
        return undefined;
      }).then(function () {
        return pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
      }).catch(function (error) { throw failure("push_service", error); });
    });
  }

  /* A client for one kind of registration.
   *   options.url         where subscriptions are registered (POST) and forgotten (DELETE)
   *   options.headers     extra request headers (the therapist page's CSRF token)
   *   options.registered  called with (response, subscription) after the server stored it */
  function client(options) {
    var registered = options.registered || function () { return undefined; };

    /* Tell the server about a subscription (idempotent: the same endpoint is stored once). */
    function register(subscription, fetchFn) {
      return sendJSON(fetchFn, options.url, "POST", subscription.toJSON(), options.headers)
        .then(function (response) {
          return Promise.resolve(registered(response, subscription)).then(function () {
            return response;
          });
        });
    }

    /* Subscribe this browser and register it; resolves with the subscription. */
    function subscribe(pushManager, fetchFn) {
      return browserSubscription(pushManager, fetchFn).then(function (subscription) {
        return register(subscription, fetchFn).then(function () { return subscription; });
      });
    }

    /* Forget an endpoint on the server; a failure is returned, not thrown (see unsubscribe). */
    function forget(endpoint, fetchFn) {
      return sendJSON(fetchFn, options.url, "DELETE", { endpoint: endpoint }, options.headers).then(
        function () { return null; },
        function (error) { return error.code === "not_found" ? null : error; }
      );
    }

    /* Turn push off in this browser. The server is told first (the endpoint is needed for that),
     * and the browser unsubscribes even when the server could not be told: a dead subscription
     * answers 410 to the next message, and the server forgets it then. Resolves with the server's
     * failure or null. */
    function unsubscribe(subscription, fetchFn) {
      return forget(subscription.endpoint, fetchFn).then(function (serverError) {
        return subscription.unsubscribe().then(function () { return serverError; });
      });
    }

    return { register: register, subscribe: subscribe, forget: forget, unsubscribe: unsubscribe };
  }

  /* ---- the therapist device registered in this browser ---------------------------------------
   * { id, endpoint, token } in IndexedDB, readable by the pages and the service worker. Its own
   * database, so the check-in outbox's ("companion") never needs a new version for it. */
  var Device = (function () {
    var DB_NAME = "companion-push";
    var STORE = "device";
    var KEY = "therapist";

    function request(req) {
      return new Promise(function (resolve, reject) {
        req.onsuccess = function () { resolve(req.result); };
        req.onerror = function () { reject(req.error); };
      });
    }

    function withStore(mode, work) {
      var opening = indexedDB.open(DB_NAME, 1);
      opening.onupgradeneeded = function () { opening.result.createObjectStore(STORE); };
      return request(opening).then(function (db) {
        return new Promise(function (resolve, reject) {
          var tx = db.transaction(STORE, mode);
          var result;
          // A failed request aborts the transaction: onabort reports it.
          request(work(tx.objectStore(STORE))).then(function (value) { result = value; }, function () {});
          tx.oncomplete = function () { db.close(); resolve(result); };
          tx.onabort = function () { db.close(); reject(tx.error); };
        });
      });
    }

    return {
      load: function () {
        if (!root.indexedDB) return Promise.resolve(null);
        return withStore("readonly", function (store) { return store.get(KEY); })
          .then(function (record) { return record || null; }, function () { return null; });
      },
      save: function (record) {
        return withStore("readwrite", function (store) { return store.put(record, KEY); });
      },
      clear: function () {
        if (!root.indexedDB) return Promise.resolve();
        return withStore("readwrite", function (store) { return store.delete(KEY); });
      },
    };
  })();

  /* The therapist's client: `csrfToken` from the page. Registering keeps the device's renewal
   * token; turning off forgets it. */
  function therapist(csrfToken) {
    var base = client({
      url: DEVICES_URL,
      headers: { "X-CSRFToken": csrfToken },
      registered: function (response, subscription) {
        return response.clone().json().then(function (data) {
          if (!data || typeof data.id !== "string" || typeof data.renewal_token !== "string") {
            throw failure("server");
          }
          return Device.save({ id: data.id, endpoint: subscription.endpoint, token: data.renewal_token });
        });
      },
    });
    return {
      register: base.register,
      subscribe: base.subscribe,
      forget: base.forget,
      unsubscribe: function (subscription, fetchFn) {
        return base.unsubscribe(subscription, fetchFn).then(function (serverError) {
          return Device.clear().then(function () { return serverError; });
        });
      },
    };
  }

  /* The browser replaced the subscription: if this browser is a therapist device, point the device
   * at the new subscription, proving it with the renewal token (no session needed: nobody may be
   * signed in for hours). Resolves true when renewed, false when this is no therapist device or
   * the server no longer has it (then the record is dropped too). */
  function renewDevice(subscription, fetchFn) {
    return Device.load().then(function (record) {
      if (!record) return false;
      var body = { token: record.token, subscription: subscription.toJSON() };
      return sendJSON(fetchFn, RENEW_URL, "POST", body).then(function () {
        record.endpoint = subscription.endpoint;
        return Device.save(record).then(function () { return true; });
      }, function (error) {
        if (error.code === "not_found") return Device.clear().then(function () { return false; });
        throw error;
      });
    });
  }

  var patient = client({ url: SUBSCRIPTIONS_URL });

  root.Push = {
    keyBytes: keyBytes,
    browserSubscription: browserSubscription,
    client: client,
    therapist: therapist,
    Device: Device,
    renewDevice: renewDevice,
    register: patient.register,
    subscribe: patient.subscribe,
    forget: patient.forget,
    unsubscribe: patient.unsubscribe,
  };
})(self);
