// Draws the Vega-Lite charts of a page: every [data-chart] element holds its spec (built by
// ketacare.reports.charts) in a <script type="application/json"> child. Vega runs with its
// expression interpreter (ast: true), so the page's CSP needs no 'unsafe-eval', and with the
// embed and tooltip styles from vega-embed.css, since the CSP refuses injected <style>.
// Charts are drawn on page load and again after every HTMX swap, so a polled fragment redraws.
(function () {
  "use strict";

  // element -> {text, view}: skip a chart whose spec has not changed, release replaced views.
  const drawn = new WeakMap();
  // chart id -> axis gutter in px, so a polled chart is drawn at its final width at once.
  const gutters = new Map();

  function embedOptions() {
    return {
      ast: true,
      expr: window.vega.expressionInterpreter,
      actions: false,
      renderer: "svg",
      defaultStyle: false,
      tooltip: { disableDefaultStyle: true },
    };
  }

  function release(el) {
    const known = drawn.get(el);
    if (known && known.view) {
      known.view.finalize();
    }
    drawn.delete(el);
  }

  function target(el) {
    let view = el.querySelector(":scope > .chart-view");
    if (!view) {
      view = document.createElement("div");
      view.className = "chart-view";
      el.appendChild(view);
    }
    // Fill the card: vega-embed's own class makes the element inline-block, which would size
    // a "container"-wide chart to nothing.
    view.style.display = "block";
    narrow(view, gutters.get(el.id) || 0);
    return view;
  }

  function fillsContainer(spec) {
    const views = [spec].concat(spec.vconcat || [], spec.hconcat || [], spec.concat || []);
    return views.some(function (v) {
      return v.width === "container";
    });
  }

  // A "container"-wide view takes the element's full width for its plot area, and the axes
  // come on top of that. Once drawn, narrow the element by that gutter and redraw, so the
  // whole chart fits the card; the gutter stays fixed, so later resizes keep fitting.
  function narrow(view, gutter) {
    view.style.width = gutter > 0 ? "calc(100% - " + gutter + "px)" : "100%";
  }

  function fitGutter(el, view, result) {
    const svg = view.querySelector("svg");
    if (!svg) {
      return;
    }
    const style = window.getComputedStyle(el);
    const room = el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const extra = Math.ceil(svg.getBoundingClientRect().width - room);
    if (extra > 0) {
      const gutter = (gutters.get(el.id) || 0) + extra;
      gutters.set(el.id, gutter);
      narrow(view, gutter);
      window.dispatchEvent(new Event("resize"));
      return result.view.runAsync();
    }
  }

  function draw(el) {
    const source = el.querySelector(':scope > script[type="application/json"]');
    if (!source) {
      return;
    }
    const text = source.textContent;
    const known = drawn.get(el);
    if (known && known.text === text) {
      return;
    }
    release(el);
    const entry = { text: text, view: null };
    drawn.set(el, entry);
    const view = target(el);
    let spec;
    try {
      spec = JSON.parse(text);
    } catch (err) {
      view.textContent = "This chart could not be read.";
      console.error("chart spec is not JSON", el.id, err);
      return;
    }
    window
      .vegaEmbed(view, spec, embedOptions())
      .then(function (result) {
        if (drawn.get(el) !== entry) {
          result.finalize(); // replaced while it was drawing
          return;
        }
        entry.view = result;
        return Promise.resolve(fillsContainer(spec) ? fitGutter(el, view, result) : null).then(
          function () {
            el.dataset.chartReady = "true";
          }
        );
      })
      .catch(function (err) {
        view.textContent = "This chart could not be drawn.";
        console.error("chart could not be drawn", el.id, err);
      });
  }

  function drawWithin(root) {
    if (root.matches && root.matches("[data-chart]")) {
      draw(root);
    }
    root.querySelectorAll("[data-chart]").forEach(draw);
  }

  function start() {
    if (!window.vega || !window.vegaEmbed || !window.vega.expressionInterpreter) {
      console.error(
        "charts.js needs vega, vega-lite, vega-embed and vega-interpreter loaded before it"
      );
      return;
    }
    drawWithin(document);
    document.body.addEventListener("htmx:afterSettle", function (event) {
      const elt = event.detail && event.detail.elt;
      drawWithin(elt && elt.isConnected ? elt : document);
    });
    document.body.addEventListener("htmx:beforeCleanupElement", function (event) {
      if (event.target.matches && event.target.matches("[data-chart]")) {
        release(event.target);
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
