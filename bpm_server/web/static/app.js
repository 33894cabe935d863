// Shared by every page: fetch() with the session's CSRF token, and the form
// checks of the task page. Text from the server is always set with
// textContent, never innerHTML.
(function () {
  "use strict";
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.getAttribute("content") : "";

  // JSON request to the REST API with the session cookie. Resolves to
  // {ok, status, body}; never throws for HTTP errors.
  async function api(url, options) {
    const opts = Object.assign({ method: "GET", credentials: "same-origin" }, options || {});
    opts.headers = Object.assign({ Accept: "application/json" }, opts.headers || {});
    if (opts.method !== "GET" && opts.method !== "HEAD") {
      opts.headers["X-CSRF-Token"] = csrf;
      if (opts.json !== undefined) {
        opts.headers["Content-Type"] = "application/json";
        opts.body = JSON.stringify(opts.json);
      }
    }
    delete opts.json;
    const response = await fetch(url, opts);
    let body = null;
    const type = response.headers.get("Content-Type") || "";
    if (type.includes("application/json")) body = await response.json();
    else body = await response.text();
    return { ok: response.ok, status: response.status, body: body };
  }

  // Fit a bpmn-js diagram into its canvas, centred, with a margin and `left`
  // pixels kept free (the modeler's palette sits there: shapes under it can be
  // neither seen nor clicked). A small diagram grows up to `maxScale`; bpmn-js's
  // own "fit-viewport" never enlarges and puts the diagram top left.
  function fitDiagram(canvas, options) {
    const opts = Object.assign({ left: 0, margin: 24, maxScale: 1.4 }, options || {});
    canvas.zoom("fit-viewport", "auto");
    const box = canvas.viewbox();
    const inner = box.inner;
    const outer = box.outer;
    if (!inner.width || !inner.height || !outer.width || !outer.height) return;
    const room = { width: outer.width - opts.left - 2 * opts.margin, height: outer.height - 2 * opts.margin };
    const scale = Math.min(opts.maxScale, room.width / inner.width, room.height / inner.height);
    const offsetX = opts.left + opts.margin + (room.width - inner.width * scale) / 2;
    const offsetY = opts.margin + (room.height - inner.height * scale) / 2;
    canvas.viewbox({ x: inner.x - offsetX / scale, y: inner.y - offsetY / scale,
      width: outer.width / scale, height: outer.height / scale });
  }

  window.bpm = { csrf: csrf, api: api, fitDiagram: fitDiagram };
})();
