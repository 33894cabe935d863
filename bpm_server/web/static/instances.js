// The instance view: bpmn-js's viewer draws the instance's version and marks
// its completed, current and late stages (marks computed by the server);
// incidents the instance API reports are listed under the engine's own.
// Text from the server is only ever set with textContent.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("instance-config").textContent);
  const viewer = new window.BpmnJS({ container: "#diagram" });

  async function drawDiagram() {
    const response = await fetch(config.bpmn, { credentials: "same-origin" });
    const status = document.getElementById("diagram-status");
    if (!response.ok) {
      status.textContent = config.strings.load_failed;
      return;
    }
    try {
      await viewer.importXML(await response.text());
    } catch (err) {
      status.textContent = config.strings.load_failed + " " + err.message;
      return;
    }
    const canvas = viewer.get("canvas");
    const registry = viewer.get("elementRegistry");
    // The box takes the diagram's proportions (within bounds), so a tall diagram
    // with many lanes is not shrunk into a letterbox; then it is fitted, centred.
    const box = document.getElementById("diagram");
    canvas.zoom("fit-viewport", "auto");
    const inner = canvas.viewbox().inner;
    if (inner.width > 0) {
      const wanted = (box.clientWidth - 48) * (inner.height / inner.width) + 48;
      box.style.height = Math.round(Math.min(Math.max(wanted, 320), 760)) + "px";
      canvas.resized();
    }
    window.bpm.fitDiagram(canvas);
    Object.entries(config.marks).forEach(([id, marks]) => {
      if (!registry.get(id)) return;
      marks.forEach((mark) => canvas.addMarker(id, "bpm-" + mark));
    });
    document.getElementById("diagram").dataset.ready = "true";
  }

  async function listIncidents() {
    const response = await window.bpm.api(config.api);
    const incidents = response.ok && response.body && Array.isArray(response.body.incidents)
      ? response.body.incidents : [];
    const list = document.getElementById("incidents");
    incidents.forEach((incident) => {
      const item = document.createElement("li");
      item.dataset.testid = "incident";
      const where = document.createElement("strong");
      where.textContent = (incident.element_id || incident.kind || config.strings.incident) + ": ";
      item.appendChild(where);
      item.appendChild(document.createTextNode(incident.message || incident.error || JSON.stringify(incident)));
      if (incident.created_at || incident.at) {
        const when = document.createElement("span");
        when.className = "muted";
        when.textContent = " (" + (incident.created_at || incident.at) + ")";
        item.appendChild(when);
      }
      list.appendChild(item);
    });
    if (list.children.length) document.getElementById("no-incidents").hidden = true;
  }

  drawDiagram();
  listIncidents();
})();
