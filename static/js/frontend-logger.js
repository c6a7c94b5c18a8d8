/* Watchpost frontend error reporter.
 *
 * Sends uncaught errors (window "error"), unhandled promise rejections and
 * HTMX server errors (5xx) to the log ingestion endpoint named by this script
 * tag's data-endpoint attribute, in batches, as source='frontend' log records.
 * Bounded: at most MAX_PER_PAGE reports per page load, repeats of the same
 * message are sent once, and a batch stays under the endpoint's 64 KiB limit.
 * Also usable by other scripts: window.watchpostLog.error("message", {extra}).
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var endpoint = script && script.getAttribute("data-endpoint");
  if (!endpoint || !window.fetch || !window.JSON) {
    return;
  }
  var MAX_PER_PAGE = 50;
  var MAX_BATCH_ENTRIES = 20;
  var MAX_BATCH_BYTES = 60000;
  var FLUSH_DELAY_MS = 2000;
  var queue = [];
  var reported = 0;
  var seen = {};
  var timer = null;

  function clip(value, limit) {
    var text = value == null ? "" : String(value);
    return text.length > limit ? text.slice(0, limit) : text;
  }

  function csrfToken() {
    var raw = document.body && document.body.getAttribute("hx-headers");
    if (raw) {
      try {
        var headers = JSON.parse(raw);
        if (headers["X-CSRFToken"]) {
          return headers["X-CSRFToken"];
        }
      } catch (ignored) { /* fall back to the cookie */ }
    }
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function schedule() {
    if (timer === null) {
      timer = window.setTimeout(function () {
        timer = null;
        flush(false);
      }, FLUSH_DELAY_MS);
    }
  }

  function flush(leaving) {
    while (queue.length) {
      var batch = [];
      var size = 2;
      while (queue.length && batch.length < MAX_BATCH_ENTRIES) {
        var entrySize = JSON.stringify(queue[0]).length + 1;
        if (batch.length && size + entrySize > MAX_BATCH_BYTES) {
          break;
        }
        batch.push(queue.shift());
        size += entrySize;
      }
      try {
        window.fetch(endpoint, {
          method: "POST",
          credentials: "same-origin",
          keepalive: !!leaving,
          headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken()},
          body: JSON.stringify(batch)
        }).catch(function () { /* reporting must never raise errors of its own */ });
      } catch (ignored) { /* same */ }
    }
  }

  function report(level, message, details) {
    message = clip(message, 1000);
    if (!message || reported >= MAX_PER_PAGE) {
      return;
    }
    var key = level + "|" + message;
    if (seen[key]) {
      return;
    }
    seen[key] = true;
    reported += 1;
    var entry = {level: level, message: message, component: "frontend", url: clip(window.location.href, 2000)};
    details = details || {};
    if (details.stack) {
      entry.stack = clip(details.stack, 4000);
    }
    if (typeof details.line === "number" && details.line >= 0) {
      entry.line = Math.floor(details.line);
    }
    if (typeof details.column === "number" && details.column >= 0) {
      entry.column = Math.floor(details.column);
    }
    if (details.extra && typeof details.extra === "object") {
      entry.extra = details.extra;
    }
    queue.push(entry);
    if (queue.length >= MAX_BATCH_ENTRIES) {
      flush(false);
    } else {
      schedule();
    }
  }

  window.addEventListener("error", function (event) {
    if (!event || !event.message || event.message === "Script error.") {
      return; // resource load errors and opaque cross-origin errors carry nothing useful
    }
    var source = event.filename ? {source: clip(event.filename, 500)} : undefined;
    report("ERROR", event.message, {
      stack: event.error && event.error.stack,
      line: event.lineno,
      column: event.colno,
      extra: source
    });
  });

  window.addEventListener("unhandledrejection", function (event) {
    var reason = event && event.reason;
    var message = reason && reason.message ? reason.message : String(reason);
    report("ERROR", "Unhandled promise rejection: " + message, {stack: reason && reason.stack});
  });

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail && event.detail.xhr;
    if (xhr && xhr.status >= 500) {
      var path = event.detail.requestConfig ? event.detail.requestConfig.path : "";
      report("WARNING", "Server error " + xhr.status + " for " + clip(path, 500), {extra: {status: xhr.status}});
    }
  });

  window.addEventListener("pagehide", function () {
    flush(true);
  });

  window.watchpostLog = {
    error: function (message, extra) { report("ERROR", message, {extra: extra}); },
    warning: function (message, extra) { report("WARNING", message, {extra: extra}); }
  };
}());
