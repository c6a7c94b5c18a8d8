// Events list: the "select all" box ticks every event checkbox of the current page.
// Delegated from document so it keeps working after HTMX swaps the results.
(function () {
  "use strict";
  document.addEventListener("change", function (e) {
    var box = e.target;
    if (!box.matches || !box.matches("input[data-select-all]")) return;
    var form = box.form || document;
    var name = box.getAttribute("data-select-all");
    form.querySelectorAll('input[type="checkbox"][name="' + name + '"]').forEach(function (cb) {
      cb.checked = box.checked;
    });
  });
})();
