/* Baromètre charts, drawn with Chart.js (served by the app at /vendor/chart.js).
 *
 * The figures come from the JSON block #benchmark-data: an object whose keys name charts
 * ({type, labels, datasets: [{label, data}], unit, max, horizontal}). Each
 * <canvas data-chart="key"> draws one of them; its aria-describedby points to the table
 * holding the same figures, so nothing is lost without JavaScript or with a screen
 * reader. No inline script and no eval: the page's CSP stays strict. */
(function () {
  "use strict";

  // Marianne-like palette with enough contrast on white, then a few distinct hues.
  var COLOURS = ["#000091", "#b34000", "#18753c", "#6a6af4", "#c9191e", "#716043",
                 "#009081", "#a558a0", "#417dc4", "#666666"];

  function readData() {
    var el = document.getElementById("benchmark-data");
    if (!el) { return null; }
    try { return JSON.parse(el.textContent || "{}"); } catch (e) { return null; }
  }

  function axis(spec) {
    var unit = spec.unit || "";
    var a = { beginAtZero: true, ticks: { callback: function (v) { return v + " " + unit; } } };
    if (spec.max) { a.max = spec.max; }
    return a;
  }

  function config(spec) {
    var line = spec.type === "line";
    var datasets = (spec.datasets || []).map(function (d, i) {
      var colour = COLOURS[i % COLOURS.length];
      return {
        label: d.label,
        data: d.data,
        backgroundColor: colour,
        borderColor: colour,
        spanGaps: true,
        tension: 0.2,
        fill: false,
        pointRadius: line ? 3 : 0
      };
    });
    var valueAxis = axis(spec);
    var scales = spec.horizontal ? { x: valueAxis } : { y: valueAxis };
    return {
      type: line ? "line" : "bar",
      data: { labels: spec.labels || [], datasets: datasets },
      options: {
        indexAxis: spec.horizontal ? "y" : "x",
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: scales,
        plugins: {
          legend: { display: datasets.length > 1, position: "bottom" },
          tooltip: {
            callbacks: {
              label: function (ctx) {
                var v = ctx.raw;
                var shown = v === null || v === undefined ? "—" : String(v).replace(".", ",");
                return ctx.dataset.label + " : " + shown + " " + (spec.unit || "");
              }
            }
          }
        }
      }
    };
  }

  function draw() {
    if (typeof window.Chart === "undefined") { return; }
    var data = readData();
    if (!data) { return; }
    var canvases = document.querySelectorAll("canvas[data-chart]");
    Array.prototype.forEach.call(canvases, function (canvas) {
      var spec = data[canvas.getAttribute("data-chart")];
      if (!spec || !spec.labels || !spec.labels.length) {
        canvas.parentNode.hidden = true;  // the table alone says it all
        return;
      }
      var rows = spec.horizontal ? spec.labels.length * Math.max(1, spec.datasets.length) : 0;
      if (rows) { canvas.parentNode.style.height = Math.max(220, 24 * rows + 80) + "px"; }
      new window.Chart(canvas, config(spec));
      canvas.setAttribute("data-rendered", "true");
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
