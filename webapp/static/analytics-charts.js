/* Statistiques charts: drawn with Chart.js (served by the app at /vendor/chart.js) from the
 * JSON data block #analytics-data. Each <canvas data-chart="…"> names its chart; the same
 * figures are in the table its aria-describedby points to, so nothing is lost without
 * JavaScript or with a screen reader. No inline script, no eval: CSP-friendly. */
(function () {
  "use strict";

  var BLUE = "#000091", RED = "#c9191e", GREEN = "#18753c", ORANGE = "#b34000", GREY = "#666666";

  function data() {
    var el = document.getElementById("analytics-data");
    if (!el) return null;
    try { return JSON.parse(el.textContent || "{}"); } catch (e) { return null; }
  }

  function percentAxis() {
    return { beginAtZero: true, ticks: { callback: function (v) { return v + " %"; } } };
  }

  function line(label, values, color, extra) {
    var d = { label: label, data: values, borderColor: color, backgroundColor: color,
              tension: 0.2, pointRadius: 2, spanGaps: true };
    for (var k in extra || {}) { d[k] = extra[k]; }
    return d;
  }

  var BUILDERS = {
    rates: function (d) {
      return {
        type: "line",
        data: { labels: d.rates.labels, datasets: [
          line("Taux d'ouverture", d.rates.open_rate, BLUE),
          line("Taux de clic", d.rates.click_rate, GREEN),
          line("Clics parmi les ouvreurs", d.rates.click_to_open, ORANGE)
        ] },
        options: { scales: { y: percentAxis() } }
      };
    },
    growth: function (d) {
      return {
        type: "bar",
        data: { labels: d.growth.labels, datasets: [
          { label: "Arrivées", data: d.growth.gains, backgroundColor: GREEN, stack: "flux" },
          { label: "Départs", data: d.growth.losses, backgroundColor: RED, stack: "flux" },
          line("Total", d.growth.total, BLUE, { type: "line", yAxisID: "total" })
        ] },
        options: { scales: { total: { position: "right", beginAtZero: true } } }
      };
    },
    sources: function (d) {
      return {
        type: "bar",
        data: { labels: d.sources.labels, datasets: [
          { label: "Abonnements actifs", data: d.sources.counts, backgroundColor: BLUE }
        ] },
        options: { indexAxis: "y", plugins: { legend: { display: false } } }
      };
    },
    traffic: function (d) {
      return {
        type: "line",
        data: { labels: d.traffic.labels, datasets: [
          line("Visites", d.traffic.visits, BLUE),
          line("Visites venues des campagnes", d.traffic.campaign_visits, GREEN)
        ] },
        options: { scales: { y: { beginAtZero: true } } }
      };
    },
    timeline: function (d) {
      return {
        type: "bar",
        data: { labels: d.timeline.labels.map(function (h) { return "h+" + h; }), datasets: [
          { label: "Ouvertures", data: d.timeline.opens, backgroundColor: BLUE },
          { label: "Clics", data: d.timeline.clicks, backgroundColor: ORANGE }
        ] },
        options: { scales: { x: { ticks: { maxTicksLimit: 14 } }, y: { beginAtZero: true } } }
      };
    },
    devices: function (d) {
      return {
        type: "doughnut",
        data: { labels: d.devices.labels, datasets: [
          { data: d.devices.counts, backgroundColor: [BLUE, ORANGE, GREEN, GREY] }
        ] }
      };
    },
    links: function (d) {
      return {
        type: "bar",
        data: { labels: d.links.labels, datasets: [
          { label: "Personnes", data: d.links.clicks, backgroundColor: BLUE }
        ] },
        options: { indexAxis: "y", plugins: { legend: { display: false } } }
      };
    }
  };

  function draw() {
    if (typeof window.Chart === "undefined") return;  // the tables remain
    var d = data();
    if (!d) return;
    var canvases = document.querySelectorAll("canvas[data-chart]");
    for (var i = 0; i < canvases.length; i++) {
      var kind = canvases[i].getAttribute("data-chart");
      var build = BUILDERS[kind];
      if (!build || !d[kind]) continue;
      var config = build(d);
      config.options = config.options || {};
      config.options.animation = false;
      config.options.maintainAspectRatio = false;
      config.options.responsive = true;
      try {
        new window.Chart(canvases[i], config);
        canvases[i].setAttribute("data-rendered", "true");
      } catch (e) { /* keep the table */ }
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
