/* The check-in form in the browser, in three parts. One file, not three: the check-in page's first
 * visit is at its request budget (bench/patient_pages.py, docs/BENCHMARKS.md), and every script is
 * a request for the page and another for the service worker's precache.
 *   1. The red flags and their "None of these" answer (works with no storage at all).
 *   2. The answers kept in this tab until they are sent, so a reload (the language switch) keeps them.
 *   3. Sending, offline first, with the triage shown at once.
 * Without scripts the page is the long form it always was, and the server does everything.
 */

/* 1. The red-flag list and its "None of these" answer.
 *
 * "None of these" folds the list to one line ("Your answer: none of these.", with a button that
 * opens it again), so the common check-in is short. A ticked red flag always wins:
 *   - ticking a flag (after opening the list again) clears "None of these";
 *   - choosing "None of these" while a flag is ticked does NOT untick it: a red flag is only ever
 *     taken back by the patient's own hand, on the flag itself, in plain sight. "None of these"
 *     stays unchosen, the list stays open and a message says why. (Unticking silently could turn
 *     a red check-in green through one mistaken tap at the bottom of a long list.)
 * "None of these" has no name, so the server never sees it; its rules are unchanged.
 * Without this script the list simply stays open and "None of these" is never shown.
 *
 * Events: the form's "reset" opens the list; "checkin:restored" (part 2, after a reload) folds or opens it quietly, without moving the focus.
 */
(function () {
  "use strict";

  var form = document.getElementById("checkin-form");
  var none = document.getElementById("red-flags-none");
  if (!form || !none) return;
  var list = document.getElementById("red-flags-list");
  var choice = document.getElementById("red-flags-none-choice");
  var folded = document.getElementById("red-flags-folded");
  var reopen = document.getElementById("red-flags-open");
  var refused = document.getElementById("red-flags-refused");
  var flags = list.querySelectorAll('input[name="red_flags"]');

  function anyTicked() {
    return Array.prototype.some.call(flags, function (flag) { return flag.checked; });
  }

  function say(message) {
    refused.textContent = message || "";
    refused.hidden = !message;
  }

  function fold(moveFocus) {
    list.hidden = true;
    choice.hidden = true;
    folded.hidden = false;
    // The checkbox just tapped is gone from the page: the focus goes to the line that replaced it.
    if (moveFocus) reopen.focus();
  }

  function unfold() {
    list.hidden = false;
    choice.hidden = false;
    folded.hidden = true;
  }

  /* The page's state from the boxes, quietly (after a restore). A flag wins over "None". */
  function sync() {
    if (anyTicked()) none.checked = false;
    say("");
    if (none.checked) fold(false);
    else unfold();
  }

  none.addEventListener("change", function () {
    if (!none.checked) return say("");
    if (anyTicked()) {
      none.checked = false;
      say(refused.getAttribute("data-message"));
      return;
    }
    say("");
    fold(true);
  });

  Array.prototype.forEach.call(flags, function (flag) {
    flag.addEventListener("change", function () {
      say("");
      if (flag.checked && none.checked) {
        none.checked = false;
        // Tell part 2: this box changed too, not only the flag.
        none.dispatchEvent(new Event("change", { bubbles: true }));
      }
    });
  });

  reopen.addEventListener("click", function () {
    unfold();
    // Back to the top of the list, to read it again from its first sign.
    flags[0].focus();
  });

  // A new check-in starts with the list open (the reset unticks "None of these" just after this).
  form.addEventListener("reset", function () {
    say("");
    unfold();
  });
  form.addEventListener("checkin:restored", sync);

  choice.hidden = false;
})();

/* 2. The check-in's answers, kept in this tab until they are sent, so that a reload keeps them:
 * above all the language switch, which posts to /me/language and comes back to this page drawn
 * afresh.
 *
 * Where: sessionStorage, one entry per visit. Health data must not outlive the tab (so never
 * localStorage), never goes into a URL, and reaches the server only when the patient presses Send.
 * When: written on every change; read once when the page loads; forgotten as soon as the entry is
 * safe elsewhere: kept in the outbox or sent (part 3 says so with "checkin:kept" on the form),
 * or posted by the form itself where part 3 does not run (the server's answer to a refused
 * form carries the answers back, and a stored one needs them no more).
 * Restoring trusts nothing it reads: only the form's own options can be chosen again, and the note
 * is cut to the length the form allows.
 */
(function () {
  "use strict";

  var form = document.getElementById("checkin-form");
  var app = window.Companion;
  if (!form || !app || !app.data.visit_id) return;
  var storage;
  try {
    storage = window.sessionStorage;
    storage.getItem("probe"); // some private modes refuse any use: then there is no draft at all
  } catch (e) {
    return;
  }
  var KEY = "checkin-draft:" + app.data.visit_id;
  var none = document.getElementById("red-flags-none");
  var more = document.getElementById("checkin-more");
  var has = Object.prototype.hasOwnProperty;

  function isChoice(el) {
    return el.type === "checkbox" || el.type === "radio";
  }

  /* Every named choice and text of the form (never the hidden client id or CSRF token). */
  function answers() {
    var fields = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name) return;
      if (isChoice(el)) {
        if (el.checked) (fields[el.name] = fields[el.name] || []).push(el.value);
      } else if (el.tagName === "TEXTAREA" && el.value) {
        fields[el.name] = el.value;
      }
    });
    return { fields: fields, none: !!(none && none.checked) };
  }

  function forget() {
    try {
      storage.removeItem(KEY);
    } catch (e) { /* nothing to forget */ }
  }

  function save() {
    var draft = answers();
    if (!Object.keys(draft.fields).length && !draft.none) return forget();
    try {
      storage.setItem(KEY, JSON.stringify(draft));
    } catch (e) { /* storage full or blocked: the answers are still on the page */ }
  }

  function stored() {
    try {
      var draft = JSON.parse(storage.getItem(KEY) || "null");
      var fields = draft && draft.fields;
      return fields && typeof fields === "object" && !Array.isArray(fields) ? draft : null;
    } catch (e) {
      return null;
    }
  }

  function restore(draft) {
    var fields = draft.fields;
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || !has.call(fields, el.name)) return;
      var value = fields[el.name];
      if (isChoice(el)) {
        // Only an option this form offers can be chosen (one at most for a radio group).
        var valid = Array.isArray(value) && (el.type === "checkbox" || value.length === 1);
        el.checked = valid && value.indexOf(el.value) !== -1;
      } else if (el.tagName === "TEXTAREA" && typeof value === "string") {
        el.value = el.maxLength > 0 ? value.slice(0, el.maxLength) : value;
      }
    });
    if (none) none.checked = draft.none === true; // part 1 lets a ticked flag win
    // Restored answers in the optional part must be seen, not folded away.
    if (more) {
      more.open = more.open || Array.prototype.some.call(
        more.querySelectorAll("input, textarea"),
        function (el) { return isChoice(el) ? el.checked : el.value !== ""; }
      );
    }
    form.dispatchEvent(new CustomEvent("checkin:restored"));
  }

  var draft = stored();
  if (draft) restore(draft);

  form.addEventListener("input", save);
  form.addEventListener("change", save);
  form.addEventListener("checkin:kept", forget);
  form.addEventListener("reset", forget);
  // On the document, so it runs after part 3's own listener on the form: a submit that part 3
  // took over (prevented) is forgotten only once it is kept.
  document.addEventListener("submit", function (event) {
    if (event.target === form && !event.defaultPrevented) forget();
  });
})();

/* 3. Sending, offline first: the entry goes into the outbox on this phone, the triage result
 * shows at once from the same rules the server uses (static/js/triage.js), then the outbox is sent.
 * Without this script the form posts to the server and the server shows the result.
 */
/* global Outbox, Triage */
(function () {
  "use strict";

  var form = document.getElementById("checkin-form");
  var app = window.Companion;
  if (!form || !app || !window.indexedDB || !window.crypto || !crypto.randomUUID) return;
  var data = app.data;
  var t = data.strings;
  var results = document.getElementById("checkin-result");

  function checked(name) {
    return Array.prototype.map.call(
      form.querySelectorAll('input[name="' + name + '"]:checked'),
      function (input) { return input.value; }
    );
  }

  function hoursSince(iso, moment) {
    return (moment.getTime() - new Date(iso).getTime()) / 3600000;
  }

  /* Earlier scores for this visit: what the server knew when the page was last synced, plus what is
   * still waiting in the outbox. The server judges with the same list once everything has arrived. */
  function earlierScores(exceptId) {
    var known = data.checkin.earlier.slice();
    return Outbox.list().then(function (entries) {
      entries.forEach(function (entry) {
        if (entry.visit_id !== data.visit_id || entry.id === exceptId || entry.state !== "pending") return;
        known.push({
          hours: hoursSince(data.checkin.performed_at, new Date(entry.body.recorded_at)),
          soreness: entry.body.soreness,
        });
      });
      return known;
    });
  }

  function showError(message) {
    var box = document.getElementById("checkin-error");
    box.textContent = message;
    box.hidden = false;
    var scale = document.getElementById("soreness-scale");
    scale.setAttribute("aria-describedby", "checkin-error");
    var first = scale.querySelector("input");
    if (first) first.focus();
  }

  function showResult(level) {
    ["red", "amber", "green"].forEach(function (name) {
      document.getElementById("result-" + name).hidden = name !== level;
    });
    form.hidden = true;
    results.hidden = false;
    var heading = document.getElementById("result-" + level + "-h");
    heading.focus();
  }

  /* Day 7's global impression of change (shown from day 6). Sent only for an entry recorded that
   * long after the visit by this phone's clock, the time the server judges it by: a phone a little
   * behind the server must not have its whole check-in refused over this one question. */
  function pgicAnswer(now) {
    var answer = checked("pgic")[0];
    if (answer === undefined) return null;
    if (hoursSince(data.checkin.performed_at, now) < data.checkin.pgic_from_hours) return null;
    return Number(answer);
  }

  function setState(text) {
    document.getElementById("checkin-state").textContent = text;
  }

  /* The red screen's last line: what happens next (companion/patient/next_step.py has the why).
   * Until the server has the entry: the offline sentence (it has reached nobody yet). Then what
   * the server's answer says of the clinic: open, unknown, or closed until `opens_at`, whose
   * sentence the page brought for each opening of the coming week, formatted by the server in the
   * patient's zone and language. An opening the page does not know gets the unknown sentence:
   * vaguer, never false. `false`: the entry is nowhere (neither stored nor sent): no line at all. */
  var nextStep = data.red_next;
  var shownId = null; // the entry whose result is on the screen

  function showNextStep(clinic) {
    var line = document.getElementById("result-red-next");
    if (!line || !nextStep) return;
    line.hidden = clinic === false;
    var text = nextStep.offline;
    if (clinic) {
      text = clinic.status === "open" ? nextStep.open : nextStep.unknown;
      if (clinic.status === "closed" && clinic.opens_at) {
        var at = Date.parse(clinic.opens_at);
        nextStep.closed.forEach(function (pair) {
          if (Date.parse(pair[0]) === at) text = pair[1];
        });
      }
    }
    line.textContent = text;
  }

  /* The entry is safe (in the outbox, or with the server): the answers kept in this tab for a
   * reload (part 2) are no longer needed. */
  function kept() {
    form.dispatchEvent(new CustomEvent("checkin:kept"));
  }

  // One id per check-in form shown: a second tap on Send is the same entry, never a second one.
  var entryId = crypto.randomUUID();
  var busy = false;

  function judge(body, symptoms, now, earlier) {
    var hours = hoursSince(data.checkin.performed_at, now);
    return Triage.triage(data.checkin.rules, body.soreness, symptoms, hours, earlier).level;
  }

  function afterSend(report, id) {
    if (!report) return;
    var mine = report.sent.filter(function (s) { return s.id === id; })[0];
    if (mine) {
      setState(t.sent);
      showNextStep(mine.clinic || { status: "unknown" });
      // The server has the final word (it may know check-ins this phone has not seen).
      if (mine.triage !== "green" && document.getElementById("result-" + mine.triage).hidden) {
        showResult(mine.triage === "red" ? "red" : "amber");
      }
    } else if (report.rejected.some(function (r) { return r.id === id; })) {
      setState(t.rejected);
    } else {
      setState(t.saved_offline);
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) return;
    var soreness = checked("soreness")[0];
    if (soreness === undefined) {
      showError(t.choose_score);
      return;
    }
    busy = true;
    document.getElementById("checkin-error").hidden = true;
    var usual = checked("usual_pain")[0];
    var note = form.querySelector('textarea[name="note"]').value.trim();
    var now = new Date();
    var symptoms = checked("red_flags").concat(checked("symptoms")).filter(function (code, i, all) {
      return all.indexOf(code) === i;
    });
    var body = {
      id: entryId,
      visit_id: data.visit_id,
      recorded_at: now.toISOString(),
      soreness: Number(soreness),
      usual_pain: usual === undefined ? null : Number(usual),
      symptoms: symptoms,
      helped: checked("helped"),
      note: note || null,
      pgic: pgicAnswer(now),
    };
    // The patient's zone travels with the entry: the offline page, which holds no link and so no
    // zone of its own, still shows the time as the patient's clinic and reminders do.
    var entry = { id: body.id, visit_id: data.visit_id, timezone: data.timezone, body: body, state: "pending", saved_at: now.toISOString(), error: null };
    shownId = body.id;
    showNextStep(null);

    // Store first, judge second: the entry is safe on the phone before anything else happens.
    Outbox.add(entry).then(function () {
      kept();
      return earlierScores(entry.id).catch(function () {
        return data.checkin.earlier; // the outbox could not be read: judge on what the page knows
      }).then(function (earlier) {
        showResult(judge(body, symptoms, now, earlier));
        setState(t.saved);
        app.announce(t.saved);
        app.requestBackgroundSync();
        return app.flush().then(function (report) { afterSend(report, body.id); }, function () {
          setState(t.saved_offline); // stored; only sending failed, and it will be retried
        });
      });
    }, function () {
      // This phone would not store it (storage full or blocked). Show the triage anyway (a red
      // flag must reach the patient whatever happens to the entry), then try to send it directly.
      showResult(judge(body, symptoms, now, data.checkin.earlier));
      return Outbox.post(window.fetch.bind(window), body).then(function (response) {
        if (response.ok) kept();
        setState(response.ok ? t.sent : t.not_saved);
        app.announce(response.ok ? t.sent : t.not_saved);
        if (!response.ok) return showNextStep(false);
        return response.json().then(function (stored) {
          showNextStep((stored && stored.clinic) || { status: "unknown" });
        }, function () { showNextStep({ status: "unknown" }); });
      }, function () {
        setState(t.not_saved);
        app.announce(t.not_saved);
        showNextStep(false);
      });
    });
  });

  // An entry sent later (back online, or by the service worker) is acknowledged in a flush report.
  document.addEventListener("outbox:flushed", function (event) {
    var report = event.detail;
    if (!shownId || !report) return;
    if (report.sent.some(function (s) { return s.id === shownId; })) afterSend(report, shownId);
  });

  document.getElementById("checkin-again").addEventListener("click", function () {
    entryId = crypto.randomUUID();
    shownId = null;
    busy = false;
    form.reset();
    document.getElementById("checkin-more").open = false;
    results.hidden = true;
    form.hidden = false;
    setState("");
    document.getElementById("checkin-title").focus();
  });
})();
