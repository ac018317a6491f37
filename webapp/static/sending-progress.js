// Live progress of a send: polls the JSON endpoint and updates the figures and the bar.
(function () {
  "use strict";
  var root = document.getElementById("sending-progress");
  if (!root) { return; }
  var url = root.getAttribute("data-url");
  var status = root.getAttribute("data-status");
  var bar = document.getElementById("sending-bar");
  var live = ["sending", "paused", "scheduled"];

  function set(name, value) {
    var el = root.querySelector('[data-field="' + name + '"]');
    if (el) { el.textContent = value; }
  }

  function eta(seconds) {
    if (seconds === null || seconds === undefined) { return "—"; }
    if (seconds < 90) { return seconds + " s"; }
    var minutes = Math.round(seconds / 60);
    if (minutes < 90) { return minutes + " min"; }
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  function show(data) {
    ["sent", "queued", "sending", "deferred", "failed", "unknown", "possible_duplicates",
     "done", "recipients", "rate"].forEach(function (key) { set(key, data[key]); });
    set("skipped", (data.skipped || 0) + (data.cancelled || 0));
    set("eta", eta(data.eta_seconds));
    if (bar) {
      bar.max = data.recipients || 1;
      bar.value = data.done;
      bar.textContent = data.done + " / " + data.recipients;
    }
    if (data.status !== status) {
      // The status changed (finished, paused elsewhere): reload for the right buttons.
      window.location.reload();
    }
  }

  function poll() {
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data) { show(data); }
        if (live.indexOf(status) >= 0) { window.setTimeout(poll, 2000); }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }

  if (live.indexOf(status) >= 0) { window.setTimeout(poll, 2000); }
})();
