// The handout's Print button (templates/clinic/handout.html): shown only when this script runs,
// since it needs it; the browser's own Print menu works either way.
"use strict";
(function () {
  var button = document.getElementById("print-button");
  if (!button) return;
  button.hidden = false;
  button.addEventListener("click", function () { window.print(); });
})();
