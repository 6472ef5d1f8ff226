// mcpyard console: draws the usage charts with uPlot from the JSON the page embeds.
// The tables under the charts carry the same numbers for a browser without JavaScript.
(function () {
  "use strict";
  var source = document.getElementById("chart-data");
  if (!source || typeof uPlot === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var step = data.step;
  // One point per bucket, empty buckets included, so that a quiet hour reads as zero.
  var xs = [], calls = [], errors = [], limited = [], p50 = [], p95 = [], p99 = [];
  var byT = {};
  data.t.forEach(function (t, i) { byT[t] = i; });
  // The whole period, bucket by bucket: the chart's axis is the period the page asked for.
  var first = Math.floor(data.since / step) * step, last = Math.floor(data.until / step) * step;
  if (data.t.length) {
    first = Math.min(first, data.t[0]);
    last = Math.max(last, data.t[data.t.length - 1]);
  }
  {
    for (var t = first; t <= last; t += step) {
      var i = byT[t];
      xs.push(t);
      calls.push(i === undefined ? 0 : data.calls[i]);
      errors.push(i === undefined ? 0 : data.errors[i]);
      limited.push(i === undefined ? 0 : data.rate_limited[i]);
      p50.push(i === undefined ? null : data.p50[i]);
      p95.push(i === undefined ? null : data.p95[i]);
      p99.push(i === undefined ? null : data.p99[i]);
    }
  }
  function width(el) { return Math.max(320, el.clientWidth - 4); }
  function draw(id, series, values) {
    var el = document.getElementById(id);
    var opts = {
      width: width(el), height: 250,
      series: [{}].concat(series),
      axes: [{}, {size: 50}],
      scales: {x: {time: true}},
      legend: {live: true},
    };
    var plot = new uPlot(opts, [xs].concat(values), el);
    el.dataset.points = String(xs.length);
    window.addEventListener("resize", function () { plot.setSize({width: width(el), height: 250}); });
    return plot;
  }
  var bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({size: [0.8, 40]}) : undefined;
  draw("chart-calls", [
    {label: "calls", stroke: "#3056d3", fill: "rgba(48,86,211,0.25)", paths: bars, points: {show: false}},
    {label: "errors", stroke: "#c53030", width: 2},
    {label: "rate-limited", stroke: "#b7791f", width: 2, dash: [6, 4]},
  ], [calls, errors, limited]);
  draw("chart-latency", [
    {label: "p50", stroke: "#1f8a4c", width: 2, spanGaps: true, points: {show: true, size: 6}},
    {label: "p95", stroke: "#b7791f", width: 2, spanGaps: true, points: {show: true, size: 6}},
    {label: "p99", stroke: "#c53030", width: 2, spanGaps: true, points: {show: true, size: 6}},
  ], [p50, p95, p99]);
  var total = calls.reduce(function (a, b) { return a + b; }, 0);
  document.getElementById("chart-calls").dataset.totalCalls = String(total);
  document.body.dataset.chartsReady = "1";
})();
