// Progressive enhancement of the server-rendered console: everything works without this file;
// with it, the project picker applies at once, dangerous buttons ask first, a run's metric charts
// and a study's trials graph are drawn (uPlot) and a run's log is tailed while it runs.
(function () {
  "use strict";

  function onReady(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }

  function autosubmit() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
  }

  // On the document, so that forms htmx swaps in later (a live study's "Stop study") ask too.
  function confirmations() {
    document.addEventListener("submit", function (event) {
      var form = event.target;
      if (form.matches && form.matches("form[data-confirm]") && !window.confirm(form.dataset.confirm)) {
        event.preventDefault();
      }
    });
  }

  // "Go back" links (no javascript: URLs: the Content-Security-Policy allows this file's scripts only).
  function backLinks() {
    document.querySelectorAll("a[data-back]").forEach(function (link) {
      link.addEventListener("click", function (event) {
        if (window.history.length > 1) { event.preventDefault(); window.history.back(); }
      });
    });
  }

  // --- metric charts ------------------------------------------------------------------------
  var PALETTE = ["#2456d6", "#c2410c", "#15803d", "#7e22ce", "#0e7490", "#b91c1c"];

  function drawCharts(box, series) {
    box.innerHTML = "";
    series.forEach(function (s, i) {
      var holder = document.createElement("figure");
      holder.className = "chart";
      holder.dataset.metric = s.name;
      holder.setAttribute("aria-label", "metric " + s.name + ", " + s.steps.length + " points");
      box.appendChild(holder);
      var width = Math.max(360, Math.min(640, box.clientWidth / Math.min(2, series.length) - 16));
      new uPlot({
        title: s.name, width: width, height: 220,
        scales: { x: { time: false } },
        series: [{ label: "step" }, { label: s.name, stroke: PALETTE[i % PALETTE.length], width: 2 }],
        axes: [{ label: "step" }, {}],
      }, [s.steps, s.values], holder);
    });
    if (window.performance && performance.mark) performance.mark("shipyard:charts");  // bench/console.py reads it
  }

  // Each metric's curves of several runs in one chart (the run comparison page).
  function compareCharts() {
    var box = document.getElementById("compare-charts");
    var data = document.getElementById("compare-series");
    if (!box || !data || typeof uPlot === "undefined") return;
    JSON.parse(data.textContent).forEach(function (chart) {
      var holder = document.createElement("figure");
      holder.className = "chart";
      holder.dataset.metric = chart.name;
      holder.setAttribute("aria-label", "metric " + chart.name + " of " + chart.runs.length + " runs");
      box.appendChild(holder);
      var series = [{ label: "step" }].concat(chart.runs.map(function (r, i) {
        return { label: r.run, stroke: PALETTE[i % PALETTE.length], width: 2, spanGaps: true };
      }));
      new uPlot({ title: chart.name, width: Math.max(360, Math.min(640, box.clientWidth / 2 - 16)), height: 240,
                  scales: { x: { time: false } }, series: series, axes: [{ label: "step" }, {}] },
                [chart.steps].concat(chart.runs.map(function (r) { return r.values; })), holder);
    });
  }

  function charts() {
    var box = document.getElementById("charts");
    var data = document.getElementById("metric-series");
    if (!box || !data || typeof uPlot === "undefined") return;
    var series = JSON.parse(data.textContent);
    if (series.length) drawCharts(box, series);
    if (box.dataset.live !== "true") return;
    var timer = setInterval(function () {
      fetch(box.dataset.metricsUrl, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (fresh) {
          if (!fresh) return;
          if (fresh.length) {
            var none = document.getElementById("no-metrics");
            if (none) none.remove();
            drawCharts(box, fresh);
          }
          var status = document.getElementById("run-status");
          if (status && !/queued|waiting|starting|running|stopping/.test(status.textContent)) clearInterval(timer);
        });
    }, 3000);
  }

  // --- a study's trials graph ----------------------------------------------------------------
  // Each state's colour comes from its swatch in the legend (console.css), as the lineage graph's do.
  function stateColors() {
    var colors = {};
    document.querySelectorAll("#study-legend [data-state] .swatch").forEach(function (swatch) {
      colors[swatch.parentElement.dataset.state] = getComputedStyle(swatch).backgroundColor;
    });
    return colors;
  }

  // The objective per trial (points, one series per state) and the best so far (a stepped line).
  function trialsGraph() {
    var box = document.getElementById("trials-graph");
    var data = document.getElementById("trials-graph-data");
    if (!box || !data || typeof uPlot === "undefined") return;
    var graph = JSON.parse(data.textContent);
    box.innerHTML = "";
    if (!graph.numbers.length) return;
    var colors = stateColors();
    var series = [{ label: "trial" }].concat(graph.states.map(function (s) {
      var color = colors[s.state] || "#5d6b82";
      return { label: s.state, stroke: color, paths: function () { return null; },
               points: { show: true, size: 9, stroke: color, fill: color } };
    }), [{ label: "best so far", stroke: colors.best || "#1c2330", width: 2, spanGaps: true,
           paths: uPlot.paths.stepped({ align: 1 }), points: { show: false } }]);
    new uPlot({
      width: Math.max(420, Math.min(1100, box.clientWidth - 8)), height: 280,
      scales: { x: { time: false } }, series: series,
      axes: [{ label: "trial", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] }, { label: graph.metric }],
    }, [graph.numbers].concat(graph.states.map(function (s) { return s.values; }), [graph.best]), box);
    box.dataset.points = String(graph.states.reduce(function (n, s) {
      return n + s.values.filter(function (v) { return v !== null; }).length;
    }, 0));
  }

  // --- live log -----------------------------------------------------------------------------
  function logs() {
    var pre = document.getElementById("logs");
    if (!pre) return;
    var offset = 0;
    function more() {
      fetch(pre.dataset.logsUrl + "?offset=" + offset, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (chunk) {
          if (!chunk) return;
          var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
          pre.appendChild(document.createTextNode(chunk.text));
          if (atEnd) pre.scrollTop = pre.scrollHeight;
          var moved = chunk.next_offset > offset;
          offset = chunk.next_offset;
          if (moved) more();
          else if (chunk.live) setTimeout(more, 1500);
          else if (!pre.textContent) pre.textContent = "(no output)";
        });
    }
    more();
  }

  // --- lineage graph ------------------------------------------------------------------------
  // Each kind's colour comes from its swatch in the legend (console.css), so the two always agree.
  function kindColors() {
    var colors = {};
    document.querySelectorAll("#lineage-legend [data-kind] .swatch").forEach(function (swatch) {
      colors[swatch.parentElement.dataset.kind] = getComputedStyle(swatch).backgroundColor;
    });
    return colors;
  }

  function lineage() {
    var box = document.getElementById("lineage-graph");
    var data = document.getElementById("lineage-elements");
    if (!box || !data || typeof cytoscape === "undefined") return;
    var colors = kindColors();
    // Labels sit on a white ground so an edge's relation never runs through a node's name.
    var ground = { "text-background-color": "#ffffff", "text-background-opacity": 0.9, "text-background-padding": 2 };
    var graph = cytoscape({
      container: box,
      elements: JSON.parse(data.textContent),
      style: [
        { selector: "node", style: Object.assign({ "label": "data(label)", "background-color": function (n) { return colors[n.data("kind")] || "#5d6b82"; },
          "color": "#1c2330", "font-size": 11, "text-valign": "bottom", "text-margin-y": 4, "width": 22, "height": 22, "z-index": 10 }, ground) },
        { selector: "node[?root]", style: { "border-width": 4, "border-color": "#f5b301", "width": 30, "height": 30 } },
        { selector: "node[?deleted]", style: { "opacity": 0.45 } },
        { selector: "node[kind = 'run']", style: { "shape": "round-rectangle" } },
        { selector: "node[kind = 'deployment']", style: { "shape": "diamond" } },
        { selector: "edge", style: Object.assign({ "curve-style": "bezier", "target-arrow-shape": "triangle", "width": 1.5,
          "line-color": "#9fb0cc", "target-arrow-color": "#9fb0cc", "label": "data(label)", "font-size": 10, "color": "#5d6b82",
          "z-index": 1 }, ground) },
      ],
      // Wide enough apart that an edge's label, at its middle, clears the names at both ends.
      layout: { name: "breadthfirst", directed: true, spacingFactor: 1.75, padding: 30 },
    });
    graph.on("tap", "node", function (event) {
      var link = event.target.data("link");
      if (link) window.location.href = link;
    });
    box.dataset.ready = "true";
  }

  // --- test requests to a model endpoint ------------------------------------------------------
  // The model's metadata (V2) says its inputs: the example request is built from them.
  function exampleFrom(metadata) {
    return JSON.stringify({ inputs: (metadata.inputs || []).map(function (input) {
      var shape = (input.shape || [1]).map(function (d) { return d > 0 ? d : 1; });
      var count = shape.reduce(function (a, b) { return a * b; }, 1);
      var zero = input.datatype === "BYTES" ? "" : input.datatype === "BOOL" ? false : 0;
      return { name: input.name, shape: shape, datatype: input.datatype, data: new Array(count).fill(zero) };
    }) });
  }

  function tryForms() {
    var form = document.getElementById("try-form");
    if (!form) return;
    var body = form.querySelector("textarea");
    var metadataUrl = form.dataset.url.replace(/\/infer$/, "");
    var edited = false;  // what the user typed is never replaced by the example
    body.addEventListener("input", function () { edited = true; });
    fetch(metadataUrl, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (metadata) {
        if (!edited && metadata && metadata.inputs && metadata.inputs.length) body.value = exampleFrom(metadata);
      })
      .catch(function () {});
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var status = document.getElementById("try-status");
      var answer = document.getElementById("try-answer");
      status.textContent = "…";
      fetch(form.dataset.url, { method: "POST", credentials: "same-origin",
                                headers: { "Content-Type": "application/json" }, body: body.value })
        .then(function (r) {
          return r.text().then(function (text) {
            status.textContent = "HTTP " + r.status;
            status.dataset.status = String(r.status);
            try { answer.textContent = JSON.stringify(JSON.parse(text), null, 1); } catch (e) { answer.textContent = text; }
          });
        })
        .catch(function (e) { status.textContent = "failed: " + e; });
    });
  }

  // --- repo forms: the source's fields, uploads with a progress bar ----------------------------
  function sourcePicker() {
    var picker = document.querySelector("[data-source-picker]");
    if (!picker) return;
    function show() {
      document.querySelectorAll("fieldset[data-source]").forEach(function (set) {
        set.hidden = set.dataset.source !== picker.value;
        set.disabled = set.hidden;  // hidden fields are not sent
      });
    }
    picker.addEventListener("change", show);
    show();
  }

  function uploads() {
    document.querySelectorAll("form[data-upload-progress]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var data = new FormData();
        Array.prototype.forEach.call(form.elements, function (el) {
          if (!el.name || el.disabled) return;
          if (el.type === "file") {
            Array.prototype.forEach.call(el.files, function (file) {
              data.append("path", file.webkitRelativePath || file.name);  // a folder keeps its layout
              data.append(el.name, file, file.name);
            });
          } else if ((el.type !== "checkbox" && el.type !== "radio") || el.checked) {
            data.append(el.name, el.value);
          }
        });
        var bar = form.querySelector("progress");
        var percent = form.querySelector("#upload-percent");
        var xhr = new XMLHttpRequest();
        xhr.open("POST", form.action);
        xhr.upload.onprogress = function (e) {
          if (!e.lengthComputable) return;
          bar.hidden = false;
          bar.value = Math.round(100 * e.loaded / e.total);
          percent.textContent = bar.value + " %";
        };
        xhr.onload = function () {
          if (xhr.responseURL && xhr.responseURL !== form.action && xhr.status < 400) {
            window.location.href = xhr.responseURL;
          } else {
            document.open(); document.write(xhr.responseText); document.close();
          }
        };
        xhr.onerror = function () { percent.textContent = "the upload failed: the connection broke"; };
        form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
        xhr.send(data);
      });
    });
  }

  // --- tabs (the run form's Basic / Repos / Configuration) -----------------------------------
  function tabs() {
    document.querySelectorAll("[role=tablist]").forEach(function (list) {
      var buttons = Array.prototype.slice.call(list.querySelectorAll("[role=tab]"));
      function select(chosen) {
        buttons.forEach(function (b) {
          var on = b === chosen;
          b.setAttribute("aria-selected", on ? "true" : "false");
          b.tabIndex = on ? 0 : -1;
          document.getElementById(b.getAttribute("aria-controls")).hidden = !on;
        });
      }
      buttons.forEach(function (b, i) {
        b.addEventListener("click", function () { select(b); });
        b.addEventListener("keydown", function (e) {
          var next = e.key === "ArrowRight" ? buttons[(i + 1) % buttons.length]
                   : e.key === "ArrowLeft" ? buttons[(i + buttons.length - 1) % buttons.length] : null;
          if (next) { select(next); next.focus(); }
        });
      });
      list.hidden = false;
      // A field the server refused is shown: its tab opens.
      var invalid = list.parentElement.querySelector("[aria-invalid=true]");
      var panel = invalid && invalid.closest("[role=tabpanel]");
      select(panel ? buttons.find(function (b) { return b.getAttribute("aria-controls") === panel.id; }) : buttons[0]);
    });
  }

  // A live study's part is swapped in by htmx: its graph (a fresh, empty box) is drawn again.
  document.addEventListener("htmx:afterSettle", function () {
    var box = document.getElementById("trials-graph");
    if (box && !box.firstChild) trialsGraph();
  });

  onReady(function () { trialsGraph(); autosubmit(); confirmations(); backLinks(); charts(); compareCharts(); logs(); lineage(); tryForms(); sourcePicker(); uploads(); tabs(); });
})();
