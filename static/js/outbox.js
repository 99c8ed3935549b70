/* The check-in outbox: every check-in is written here (IndexedDB) before it is sent, and stays until
 * the server acknowledges it. Used by the pages and by the service worker (/sw.js includes it).
 *
 * An entry: { id, visit_id, timezone, body, state: "pending" | "rejected", saved_at, error }
 *   timezone  the patient's IANA zone, to show the entry's time in it on any page
 *   body      exactly what POST /api/v1/checkins receives (id and visit_id included)
 *   rejected  the server said the entry itself is wrong (4xx): kept and shown, never dropped silently
 * Only pending or rejected entries are kept; an acknowledged entry is deleted at once.
 */
(function (root) {
  "use strict";

  var DB_NAME = "companion";
  var STORE = "outbox";
  var ENDPOINT = "/api/v1/checkins";
  var TIMEOUT_MS = 20000; // a hung request must not hold the outbox (and its lock) forever

  function request(req) {
    return new Promise(function (resolve, reject) {
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }

  function open() {
    var req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = function () { req.result.createObjectStore(STORE, { keyPath: "id" }); };
    return request(req);
  }

  function withStore(mode, work) {
    return open().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, mode);
        var result;
        var failed = function (error) {
          db.close();
          reject(error || tx.error || new Error("outbox transaction failed"));
        };
        Promise.resolve(work(tx.objectStore(STORE))).then(function (value) { result = value; }, failed);
        tx.oncomplete = function () { db.close(); resolve(result); };
        tx.onabort = function () { failed(tx.error); }; // onerror is followed by onabort
      });
    });
  }

  function add(entry) {
    // Resolves only once the transaction has committed: the entry is on the phone for good.
    return withStore("readwrite", function (store) { return request(store.put(entry)); });
  }

  function put(entry) { return add(entry); }

  function list() {
    return withStore("readonly", function (store) { return request(store.getAll()); })
      .then(function (entries) {
        return entries.sort(function (a, b) {
          return a.body.recorded_at < b.body.recorded_at ? -1 : a.body.recorded_at > b.body.recorded_at ? 1 : 0;
        });
      });
  }

  function remove(id) {
    return withStore("readwrite", function (store) { return request(store.delete(id)); });
  }

  /* One flush at a time per browser (pages and the service worker share the lock where the Web
   * Locks API exists; elsewhere the server's idempotency makes an overlapping flush harmless). */
  function exclusive(work) {
    var locks = root.navigator && root.navigator.locks;
    return locks ? locks.request("companion-outbox", work) : work();
  }

  /* Send pending entries oldest first. The report says what happened, so every caller can show it:
   *   sent: [{id, triage, clinic}]  rejected: [{id, code}]
   *   retry: the network or server failed, try later
   *   unauthorized: the link no longer lets this phone in (kept; the patient must open a new link) */
  function flush(fetchFn) {
    var report = { sent: [], rejected: [], retry: false, unauthorized: false };
    return exclusive(function () {
      return list().then(function (entries) {
        var pending = entries.filter(function (e) { return e.state === "pending"; });
        return pending.reduce(function (chain, entry) {
          return chain.then(function (stop) {
            if (stop) return true;
            return send(fetchFn, entry, report);
          });
        }, Promise.resolve(false));
      });
    }).then(function () { return report; });
  }

  function post(fetchFn, body) {
    var abort = typeof AbortController === "function" ? new AbortController() : null;
    var timer = abort ? setTimeout(function () { abort.abort(); }, TIMEOUT_MS) : null;
    return fetchFn(ENDPOINT, {
      method: "POST",
      credentials: "same-origin",
      redirect: "error", // a redirect is never an acknowledgment
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
      signal: abort ? abort.signal : undefined,
    }).then(function (response) {
      clearTimeout(timer);
      return response;
    }, function (error) {
      clearTimeout(timer);
      throw error;
    });
  }

  // The server's clock minus this phone's, in ms, from the answer's Date header (HTTP dates have
  // whole seconds: good enough for a check-in's time); null without a usable header.
  function clockSkew(response) {
    var server = Date.parse(response.headers.get("Date") || "");
    return isNaN(server) ? null : server - Date.now();
  }

  function send(fetchFn, entry, report) {
    return post(fetchFn, entry.body).then(function (response) {
      if (response.status === 200 || response.status === 201) {
        return response.json().then(function (stored) {
          // Only the server's copy of this very entry counts as an acknowledgment.
          if (!stored || stored.id !== entry.id) {
            report.retry = true;
            return true;
          }
          // clinic: whether it is open now, for the red screen's last line (checkin.js).
          report.sent.push({ id: entry.id, triage: stored.triage, clinic: stored.clinic || null });
          return remove(entry.id).then(function () { return false; });
        });
      }
      if (response.status === 401 || response.status === 403) {
        report.unauthorized = true;
        return true;
      }
      if (response.status === 429 || response.status >= 500) {
        report.retry = true;
        return true;
      }
      // Any other 4xx: the server refuses this entry as it is. Keep it and say so.
      return response.json().catch(function () { return {}; }).then(function (data) {
        var error = (data && data.error) || {};
        if (error.code === "too_early" && error.field === "pgic" && entry.body.pgic != null) {
          // The day-7 question was answered before the server asks it (the visit's time was
          // changed, or this phone's clock runs ahead). The rest of the entry, red flags included,
          // must still reach the clinic: send it again without that answer.
          delete entry.body.pgic;
          return put(entry).then(function () { return send(fetchFn, entry, report); });
        }
        var skew = clockSkew(response);
        if ((error.code === "recorded_in_future" || error.code === "recorded_before_visit") &&
            !entry.clockCorrected && skew !== null) {
          // This phone's clock is off by more than the server allows (it takes a few minutes).
          // The entry was made when this clock said, which in the server's time is that moment
          // plus the difference between the two clocks now: send it once more, corrected, so a
          // red flag from a phone with a wrong clock still reaches the clinic.
          entry.body.recorded_at = new Date(Date.parse(entry.body.recorded_at) + skew).toISOString();
          entry.clockCorrected = true;
          return put(entry).then(function () { return send(fetchFn, entry, report); });
        }
        var code = error.code || "http_" + response.status;
        entry.state = "rejected";
        entry.error = code;
        report.rejected.push({ id: entry.id, code: code });
        return put(entry).then(function () { return false; });
      });
    }, function () {
      report.retry = true; // offline, or the server is unreachable
      return true;
    });
  }

  root.Outbox = { add: add, list: list, remove: remove, flush: flush, post: post };
})(self);
