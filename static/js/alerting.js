// Alerting pages: select-all boxes, error messages from HTMX requests, "touched" fields for
// validation as you type. Loaded with <script src defer>; no inline script anywhere.
(function () {
  "use strict";

  function errorBox() {
    return document.getElementById("alerting-error");
  }

  function showError(text) {
    var box = errorBox();
    if (!box) { return; }
    box.textContent = text || "Something went wrong; reload and try again.";
    box.hidden = false;
  }

  // Select-all checkbox: <input type=checkbox data-select-all="alerts"> toggles name="alerts".
  document.addEventListener("change", function (e) {
    var t = e.target;
    if (!t || !t.matches || !t.matches("input[data-select-all]")) { return; }
    var scope = t.form || document;
    scope.querySelectorAll('input[type=checkbox][name="' + t.dataset.selectAll + '"]').forEach(function (box) {
      box.checked = t.checked;
    });
  });

  // Fields the user has changed, so live validation reports only on those.
  function markTouched(e) {
    var t = e.target;
    if (!t || !t.name || !t.form || t.form.id !== "rule-form") { return; }
    var hidden = t.form.querySelector('input[name="_touched"]');
    if (!hidden) { return; }
    var names = hidden.value ? hidden.value.split(",") : [];
    if (names.indexOf(t.name) === -1) {
      names.push(t.name);
      hidden.value = names.join(",");
    }
  }
  // Capture phase: runs before HTMX's own listener builds the request.
  document.addEventListener("input", markTouched, true);
  document.addEventListener("change", markTouched, true);

  // The element that issued the request (detail.elt is the swap target in some events).
  function source(e) {
    var el = (e.detail.requestConfig && e.detail.requestConfig.elt) || e.detail.elt;
    return el && el.closest ? el : null;
  }

  function swapsErrors(e) {
    var el = source(e);
    return e.detail.xhr.status === 400 && !!(el && el.closest("[data-swap-errors]"));
  }

  document.addEventListener("htmx:beforeSwap", function (e) {
    // Forms marked data-swap-errors render their own 400 with inline field errors.
    if (swapsErrors(e)) {
      e.detail.shouldSwap = true;
      e.detail.isError = false;
    }
  });

  document.addEventListener("htmx:responseError", function (e) {
    var xhr = e.detail.xhr;
    if (swapsErrors(e)) {
      return;
    }
    var text = xhr.getResponseHeader("Content-Type") && xhr.getResponseHeader("Content-Type").indexOf("text/plain") === 0
      ? xhr.responseText
      : "The server refused this (HTTP " + xhr.status + ").";
    showError(text);
  });

  document.addEventListener("htmx:sendError", function () {
    showError("The server could not be reached; check the connection and try again.");
  });

  document.addEventListener("htmx:afterRequest", function (e) {
    var box = errorBox();
    if (box && e.detail.successful && e.detail.requestConfig && e.detail.requestConfig.verb !== "get") {
      box.hidden = true;
      box.textContent = "";
    }
  });
})();
