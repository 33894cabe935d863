// The modeler's what-if panel: the diagram as drawn is sent to
// POST .../sla-preview, which replays the model's completed stages of the last N days
// under its SLAs; the answer is shown as on-time % per stage before and after, and the
// past stages that would newly breach or stop breaching. Text is set with textContent.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("modeler-config").textContent);
  const T = config.strings;
  const button = document.getElementById("sla-preview");
  const box = document.getElementById("sla-preview-result");
  if (!button || !box) return;

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "–" : String(text);
    row.appendChild(td);
    return td;
  }

  // Shanghai time in the page's language, as the server formats moments elsewhere.
  function when(iso) {
    const lang = document.documentElement.lang || "zh-CN";
    return new Date(iso).toLocaleString(lang.replace("_", "-"), { timeZone: "Asia/Shanghai" });
  }

  function percent(value) {
    return value === null || value === undefined ? "–" : value + "%";
  }

  function table(headers, rows) {
    const t = document.createElement("table");
    const head = document.createElement("tr");
    headers.forEach((h) => { const th = document.createElement("th"); th.textContent = h; head.appendChild(th); });
    const thead = document.createElement("thead");
    thead.appendChild(head);
    t.appendChild(thead);
    const body = document.createElement("tbody");
    rows.forEach((r) => body.appendChild(r));
    t.appendChild(body);
    return t;
  }

  function show(answer) {
    box.replaceChildren();
    const summary = document.createElement("p");
    summary.dataset.testid = "sla-preview-summary";
    summary.textContent = answer.note ? T.preview_empty.replace("{days}", answer.days)
      : T.preview_summary.replace("{n}", answer.stages_compared).replace("{days}", answer.days);
    box.appendChild(summary);
    if (!answer.stages.length) return;
    const rows = answer.stages.map((s) => {
      const tr = document.createElement("tr");
      tr.dataset.stage = s.stage;
      cell(tr, s.title);
      cell(tr, s.completed);
      cell(tr, s.sla_after || T.none);
      cell(tr, percent(s.on_time_before_percent));
      const after = cell(tr, percent(s.on_time_after_percent));
      if (s.on_time_after_percent !== null && s.on_time_before_percent !== null) {
        after.className = s.on_time_after_percent < s.on_time_before_percent ? "bad"
          : s.on_time_after_percent > s.on_time_before_percent ? "ok" : "";
      }
      return tr;
    });
    box.appendChild(table([T.preview_stage, T.preview_completed, T.preview_sla, T.preview_before, T.preview_after],
      rows));
    [["newly_breaching", T.preview_newly], ["no_longer_breaching", T.preview_cleared]].forEach(([key, title]) => {
      if (!answer[key].length) return;
      const h = document.createElement("h3");
      h.textContent = title.replace("{n}", answer[key].length);
      box.appendChild(h);
      const list = document.createElement("ul");
      list.dataset.testid = "sla-preview-" + key;
      answer[key].slice(0, 50).forEach((s) => {
        const li = document.createElement("li");
        li.textContent = s.title + " · " + s.account_name + " · " + when(s.completed_at);
        list.appendChild(li);
      });
      box.appendChild(list);
    });
  }

  button.addEventListener("click", async () => {
    box.replaceChildren();
    const days = document.getElementById("sla-preview-days").value || "90";
    const xml = await window.bpm.currentModelerXml();
    const response = await window.bpm.api(config.urls.sla_preview + "?days=" + encodeURIComponent(days), {
      method: "POST", headers: { "Content-Type": "application/xml" }, body: xml });
    if (!response.ok) {
      const error = response.body && response.body.error;
      const p = document.createElement("p");
      p.className = "bad";
      p.textContent = T.request_failed + " " + (error ? error.message : String(response.status));
      box.appendChild(p);
      return;
    }
    show(response.body);
  });
})();
