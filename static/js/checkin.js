/* The check-in form, offline first: the entry goes into the outbox on this phone, the triage result
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
    results.hidden = true;
    form.hidden = false;
    setState("");
    document.getElementById("checkin-title").focus();
  });
})();
