// Import progress: polls the batch's JSON status and moves the <progress> bar;
// reloads the page once the import is finished to show the report.
(function () {
  "use strict";
  var box = document.getElementById("import-progress");
  if (!box) { return; }
  var status = box.getAttribute("data-status");
  if (status !== "pending" && status !== "running") { return; }
  var url = box.getAttribute("data-status-url");
  var bar = document.getElementById("import-bar");
  var text = document.getElementById("import-text");
  var delay = 1000;

  function show(data) {
    if (bar) {
      bar.max = Math.max(data.total_rows || 1, 1);
      bar.value = data.processed_rows || 0;
      bar.textContent = String(data.processed_rows || 0);
    }
    if (text) {
      text.textContent = (data.processed_rows || 0) + " / " + (data.total_rows || "…") +
        " — " + (data.imported || 0) + " importées, " + (data.duplicates || 0) + " doublons";
    }
  }

  function poll() {
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      })
      .then(function (data) {
        show(data);
        if (data.status === "done" || data.status === "failed") {
          window.location.reload();
          return;
        }
        delay = 1000;
        window.setTimeout(poll, delay);
      })
      .catch(function () {
        delay = Math.min(delay * 2, 15000);
        window.setTimeout(poll, delay);
      });
  }
  window.setTimeout(poll, delay);
})();
