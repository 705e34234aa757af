// Runs the view page's inline script in Node against the real app, with a minimal DOM.
//
// Not a browser (layout, CSS and the iframe are not exercised): it catches script errors and
// checks what the script draws and writes, from the same JSON routes the browser would call.
// Usage: node page_harness.js <page.html> <URL the page is opened at>
"use strict";
const fs = require("fs");

const [, , pagePath, base] = process.argv;
const html = fs.readFileSync(pagePath, "utf8");
const script = html.match(/<script>([\s\S]*)<\/script>/)[1];

class El {
  constructor(tag, id) {
    this.tagName = tag; this.id = id || ""; this.attrs = {}; this.children = [];
    this.listeners = {}; this._html = ""; this.textContent = ""; this.value = "";
  }
  set innerHTML(v) { this._html = v; this.children = []; this.textContent = ""; }
  get innerHTML() { return this._html; }
  setAttribute(k, v) { this.attrs[k] = String(v); }
  appendChild(c) { this.children.push(c); return c; }
  insertAdjacentHTML(_where, v) { this._html = v + this._html; }
  addEventListener(type, fn) { (this.listeners[type] = this.listeners[type] || []).push(fn); }
  async fire(type) { for (const fn of this.listeners[type] || []) await fn(); }
}
const byId = new Map();
const errors = [];
globalThis.document = {
  getElementById(id) {
    if (!byId.has(id)) byId.set(id, new El("div", id));
    return byId.get(id);
  },
  createElementNS(_ns, tag) { return new El(tag); },
};
const realFetch = globalThis.fetch;
const requests = [];
globalThis.location = { pathname: new URL(base).pathname };
globalThis.fetch = (url, opts) => {
  requests.push(url);
  return realFetch(new URL(url, base), opts);
};
process.on("unhandledRejection", (e) => errors.push(String(e && e.stack || e)));

function svgSummary(id) {
  const el = byId.get(id);
  const svg = el && el.children.find((c) => c.tagName === "svg");
  if (!svg) return null;
  const count = (tag, cls) => svg.children.filter((c) => c.tagName === tag &&
    (cls === undefined || c.attrs.class === cls)).length;
  return {
    history_lines: count("polyline", "history"), forecast_lines: count("polyline", "forecast"),
    band80: count("polygon", "band-80"), band95: count("polygon", "band-95"),
    circles: count("circle"), texts: count("text"),
  };
}
async function waitFor(cond, what) {
  const deadline = Date.now() + 15000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 50));
  }
}

(async () => {
  try {
    new Function(script)();  // the page's own script, as the browser would run it
    await waitFor(() => svgSummary("chart") && byId.get("registry").innerHTML &&
                  byId.get("drift").innerHTML && byId.get("accuracy").innerHTML, "first load");
    const first = {
      title: byId.get("chart-title").textContent, chart: svgSummary("chart"),
      run: byId.get("run").innerHTML, accuracy: byId.get("accuracy").innerHTML,
      acc_table: (byId.get("acc-table") || {}).innerHTML,
      acc_chart: svgSummary("acc-chart"), drift: byId.get("drift").innerHTML,
      drift_date: byId.get("drift-date").textContent, registry: byId.get("registry").innerHTML,
      dataset_options: byId.get("dataset").innerHTML, series_options: byId.get("series-list").innerHTML,
      status: byId.get("status").textContent,
    };
    const list = byId.get("series-list");
    list.value = "S01|I002";
    await list.fire("change");
    await waitFor(() => byId.get("acc-group").textContent.includes("S01"), "the picked series");
    const picked = { title: byId.get("chart-title").textContent, chart: svgSummary("chart"),
                     acc_group: byId.get("acc-group").textContent };
    byId.get("search").value = "s02";
    await byId.get("search").fire("input");
    await waitFor(() => !list.innerHTML.includes("S01|I001"), "the search");
    const searched = { series_options: list.innerHTML, status: byId.get("status").textContent };
    console.log(JSON.stringify({ first, picked, searched, requests, errors }));
  } catch (e) {
    console.log(JSON.stringify({ fatal: String(e && e.stack || e), requests, errors }));
  }
})();
