// costspan console: draws each chart from the JSON beside it (uPlot), on load and after htmx swaps a page in.
(function () {
  "use strict";
  const palette = ["#2463eb", "#e8590c", "#2f9e44", "#ae3ec9", "#f08c00", "#0c8599", "#e03131", "#5c7cfa", "#868e96"];

  function money(v) {
    if (v == null) return "";
    const abs = Math.abs(v);
    if (abs !== 0 && abs < 0.01) return (v < 0 ? "-" : "") + "<$0.01";
    return (v < 0 ? "-$" : "$") + abs.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }
  function count(v) { return v == null ? "" : Math.round(v).toLocaleString("en-US"); }

  function options(spec, width, height) {
    const fmt = spec.unit === "usd" ? money : count;
    const series = [{}];
    const bands = [];
    if (spec.kind === "trend") {
      series.push({ label: "spent", stroke: palette[0], width: 2, fill: "rgba(36,99,235,0.08)", value: (u, v) => fmt(v) });
      series.push({ label: "forecast", stroke: palette[1], width: 2, dash: [6, 4], value: (u, v) => fmt(v) });
      series.push({ label: "80% low", stroke: "rgba(232,89,12,0.35)", width: 1, value: (u, v) => fmt(v) });
      series.push({ label: "80% high", stroke: "rgba(232,89,12,0.35)", width: 1, value: (u, v) => fmt(v) });
      bands.push({ series: [4, 3], fill: "rgba(232,89,12,0.12)" });
    } else {
      spec.series.forEach((s, i) => series.push({
        label: s.label, stroke: palette[i % palette.length], width: 2, value: (u, v) => fmt(v),
      }));
    }
    return {
      width: width, height: height, series: series, bands: bands,
      scales: { x: { time: true } },
      axes: [{}, { values: (u, vals) => vals.map(fmt), size: 70 }],
      legend: { live: true },
    };
  }

  function draw(root) {
    (root || document).querySelectorAll(".chart").forEach(function (el) {
      if (el.dataset.drawn) return;
      const source = el.querySelector("script[type='application/json']");
      if (!source || typeof uPlot === "undefined") return;
      const spec = JSON.parse(source.textContent);
      el.dataset.drawn = "1";
      if (!spec.x.length) { el.insertAdjacentHTML("beforeend", "<p class='sub'>No calls in this range.</p>"); return; }
      const data = [spec.x].concat(spec.series.map((s) => s.values));
      const width = Math.max(300, el.clientWidth - 16);
      new uPlot(options(spec, width, Number(el.dataset.height) || 260), data, el);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:load", function (event) { draw(event.target); });
})();
