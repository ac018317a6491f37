// Segment editor: live count of the matching contacts while the conditions change.
(function () {
  "use strict";
  var form = document.getElementById("segment-form");
  if (!form) { return; }
  var out = document.getElementById("segment-count");
  var button = document.getElementById("segment-count-button");
  var url = form.getAttribute("data-count-url");
  var timer = null;

  function count() {
    var body = new FormData(form);
    var token = document.querySelector('meta[name="csrf-token"]');
    var headers = { "Accept": "application/json" };
    if (token) { headers["X-CSRFToken"] = token.getAttribute("content"); }
    fetch(url, { method: "POST", body: body, headers: headers, credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        if (data.error) {
          out.textContent = data.error.message;
        } else {
          out.textContent = data.count + " " + (out.getAttribute("data-label") || "");
        }
      })
      .catch(function () { out.textContent = ""; });
  }

  function later() {
    if (timer) { window.clearTimeout(timer); }
    timer = window.setTimeout(count, 400);
  }
  form.addEventListener("change", later);
  form.addEventListener("input", later);
  if (button) { button.addEventListener("click", count); }
  count();
})();
