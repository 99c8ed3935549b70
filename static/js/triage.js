/* The browser's interpreter of the triage rules (companion/care/triage.py, rules_document()).
 *
 * The rules themselves are data served by the server; this file only reads them, step for step like
 * the server's triage(), so a check-in made offline gets the same level it will get on arrival.
 * tests/e2e compares both on a table of cases.
 */
(function (root) {
  "use strict";

  var RANK = { green: 0, amber: 1, red: 2 };

  function windowFor(rules, hours) {
    var envelope = rules.envelope;
    for (var i = 0; i < envelope.length; i++) {
      if (envelope[i].from_hours <= hours && hours < envelope[i].to_hours) return envelope[i];
    }
    return envelope[envelope.length - 1];
  }

  /* earlier: [{hours, soreness}] of the same visit. Returns {level, reasons}. */
  function triage(rules, soreness, symptoms, hours, earlier) {
    var level = "green";
    var reasons = [];
    function raiseTo(next, reason) {
      if (reasons.indexOf(reason) === -1) reasons.push(reason);
      if (RANK[next] > RANK[level]) level = next;
    }

    symptoms.forEach(function (code) {
      var s = rules.symptoms[code];
      if (!s) return; // unknown codes are refused by the server; never raise or lower on them here
      if (s.level === "red") raiseTo("red", "symptom:" + code);
      else if (s.level === "amber" && (s.amber_after_hours === null || hours >= s.amber_after_hours)) {
        raiseTo("amber", "symptom:" + code);
      }
    });

    var w = windowFor(rules, Math.max(hours, 0));
    if (soreness >= w.amber_at) raiseTo("amber", "soreness:above_envelope");

    var before = (earlier || [])
      .filter(function (e) { return e.hours < hours; })
      .sort(function (a, b) { return a.hours - b.hours; });
    var rise = rules.rise;
    if (before.length && hours >= rise.after_hours &&
        soreness >= before[before.length - 1].soreness + rise.points) {
      raiseTo("amber", "soreness:rising");
    }
    var first = rules.above_first;
    if (before.length && first.from_hours <= hours && hours < first.to_hours &&
        soreness >= before[0].soreness + rise.points) {
      raiseTo("amber", "soreness:above_first");
    }
    var noDrop = rules.no_drop;
    if (noDrop.from_hours <= hours && hours < noDrop.to_hours && soreness > w.usual_max) {
      var dayOne = before.filter(function (e) {
        return noDrop.compare_from <= e.hours && e.hours < noDrop.compare_to;
      });
      if (dayOne.length && soreness >= dayOne[dayOne.length - 1].soreness) {
        raiseTo("amber", "soreness:no_drop");
      }
    }
    return { level: level, reasons: reasons };
  }

  root.Triage = { triage: triage };
})(self);
