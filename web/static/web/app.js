// The pages' behaviour, from a static file (the pages run under CSP default-src 'self':
// no inline script, no inline handler, no inline style).
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // Selects that submit their form on change (the language switch, the plan picker).
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target instanceof HTMLSelectElement && target.hasAttribute("data-autosubmit")) {
      target.form.submit();
    }
  });

  // The dialog: opened when its body receives content, closed by [data-close-dialog].
  function dialog() { return document.getElementById("dialog"); }
  document.addEventListener("htmx:afterSwap", function (event) {
    var box = dialog();
    if (box && event.detail.target && event.detail.target.id === "dialog-body" && !box.open) {
      box.showModal();
    }
    drawCharts(event.detail.target);
  });
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target instanceof Element && target.closest("[data-close-dialog]")) {
      var box = dialog();
      if (box && box.open) { box.close(); }
    }
  });

  // Charts: the data comes from a json_script block named by data-source.
  var charts = [];
  function drawCharts(root) {
    if (typeof window.echarts === "undefined") { return; }
    (root || document).querySelectorAll("[data-chart='cumulative']").forEach(function (node) {
      var source = document.getElementById(node.getAttribute("data-source"));
      if (!source) { return; }
      var rows = JSON.parse(source.textContent);
      var old = window.echarts.getInstanceByDom(node);
      if (old) { old.dispose(); }
      var chart = window.echarts.init(node, null, { renderer: "canvas" });
      var num = function (key) { return rows.map(function (r) { return r[key] === null ? null : Number(r[key]); }); };
      chart.setOption({
        animation: false,
        tooltip: { trigger: "axis" },
        legend: { top: 0 },
        grid: { left: 10, right: 10, bottom: 10, top: 36, containLabel: true },
        xAxis: { type: "category", data: rows.map(function (r) { return r.month; }) },
        yAxis: { type: "value" },
        series: [
          { name: node.getAttribute("data-label-actual"), type: "line", data: num("actual") },
          { name: node.getAttribute("data-label-expected"), type: "line", data: num("expected"), lineStyle: { type: "dashed" } },
          { name: node.getAttribute("data-label-target"), type: "line", data: num("target"), lineStyle: { type: "dotted" } }
        ]
      });
      charts.push(chart);
    });
  }
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
})();
