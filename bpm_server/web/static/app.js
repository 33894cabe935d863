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

  window.bpm = { csrf: csrf, api: api };
})();
