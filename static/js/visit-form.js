/* Visit form: ticking a region ticks its usual stretches (care/stretches.py defaults), once.
 * The therapist stays in charge: a stretch they untick is not ticked again by this script. */
(function () {
  "use strict";
  var data = document.getElementById("stretch-defaults");
  if (!data) return;
  var defaults = JSON.parse(data.textContent);
  var touched = {};
  var box = function (code) {
    return document.querySelector('#stretch-choices input[value="' + code + '"]');
  };
  document.querySelectorAll('#stretch-choices input[name="stretches"]').forEach(function (input) {
    input.addEventListener("change", function () { touched[input.value] = true; });
  });
  document.querySelectorAll('input[name="regions"]').forEach(function (region) {
    region.addEventListener("change", function () {
      if (!region.checked) return;
      (defaults[region.value] || []).forEach(function (code) {
        var input = box(code);
        if (input && !touched[code]) input.checked = true;
      });
    });
  });
})();
