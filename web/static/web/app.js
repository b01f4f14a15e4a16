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
    drawReviewCharts(root || document);
  }

  // A chart's rows from its json_script block, a fresh ECharts instance on its node.
  function chartOn(node) {
    var source = document.getElementById(node.getAttribute("data-source"));
    if (!source) { return null; }
    var old = window.echarts.getInstanceByDom(node);
    if (old) { old.dispose(); }
    return { rows: JSON.parse(source.textContent), chart: window.echarts.init(node, null, { renderer: "canvas" }) };
  }
  function toNumber(value) { return value === null || value === undefined ? null : Number(value); }

  // The review page: each child's target and actual as bars; the factor analysis as a
  // waterfall from target to actual (an invisible base under each step's visible rise
  // or fall: the steps' start and end come from the selector).
  function drawReviewCharts(root) {
    root.querySelectorAll("[data-chart='bars']").forEach(function (node) {
      var made = chartOn(node);
      if (!made) { return; }
      made.chart.setOption({
        animation: false,
        tooltip: { trigger: "axis" },
        legend: { top: 0 },
        grid: { left: 10, right: 10, bottom: 10, top: 36, containLabel: true },
        xAxis: { type: "category", data: made.rows.map(function (r) { return r.name; }) },
        yAxis: { type: "value" },
        series: [
          { name: node.getAttribute("data-label-target"), type: "bar", data: made.rows.map(function (r) { return toNumber(r.target); }) },
          { name: node.getAttribute("data-label-actual"), type: "bar", data: made.rows.map(function (r) { return toNumber(r.actual); }) }
        ]
      });
      charts.push(made.chart);
    });
    root.querySelectorAll("[data-chart='waterfall']").forEach(function (node) {
      var made = chartOn(node);
      if (!made) { return; }
      var base = [], up = [], down = [];
      made.rows.forEach(function (r) {
        var start = Number(r.start), end = Number(r.end);
        base.push(Math.min(start, end));
        if (r.total) { up.push({ value: end - start, itemStyle: { color: "#1565c0" } }); down.push(0); }
        else if (end >= start) { up.push(end - start); down.push(0); }
        else { up.push(0); down.push(start - end); }
      });
      made.chart.setOption({
        animation: false,
        tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
        grid: { left: 10, right: 10, bottom: 10, top: 20, containLabel: true },
        xAxis: { type: "category", data: made.rows.map(function (r) { return r.label; }) },
        yAxis: { type: "value" },
        series: [
          { type: "bar", stack: "all", silent: true, itemStyle: { color: "transparent" }, data: base, tooltip: { show: false } },
          { name: node.getAttribute("data-label-up"), type: "bar", stack: "all", itemStyle: { color: "#2e7d32" }, data: up },
          { name: node.getAttribute("data-label-down"), type: "bar", stack: "all", itemStyle: { color: "#c62828" }, data: down }
        ]
      });
      charts.push(made.chart);
    });
  }
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
})();
