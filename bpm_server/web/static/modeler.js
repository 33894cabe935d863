// The process owner's modeler: bpmn-js (window.BpmnJS, served from npm's
// package) plus a small side panel for a user task's department, form and SLA
// properties, stored as SpiffWorkflow extension properties
// (<spiffworkflow:properties><spiffworkflow:property name value/>). The server
// validates (POST .../versions/validate) and publishes (POST .../versions).
// Text from the diagram or the server is only ever set with textContent.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("modeler-config").textContent);
  const T = config.strings;
  const SPIFF = "spiffworkflow";

  // The SpiffWorkflow extension as bpmn-js's moddle needs to know it. Elements
  // of the namespace that are not declared would be dropped on import, so the
  // ones SpiffWorkflow's parser reads are all declared.
  const spiffModdle = {
    name: "SpiffWorkflow",
    prefix: SPIFF,
    uri: "http://spiffworkflow.org/bpmn/schema/1.0/core",
    xml: { tagAlias: "lowerCase" },
    associations: [],
    types: [
      { name: "Properties", superClass: ["Element"],
        properties: [{ name: "properties", type: "Property", isMany: true }] },
      { name: "Property", superClass: ["Element"],
        properties: [{ name: "name", type: "String", isAttr: true }, { name: "value", type: "String", isAttr: true }] },
      { name: "InstructionsForEndUser", superClass: ["Element"],
        properties: [{ name: "value", type: "String", isBody: true }] },
      { name: "PreScript", superClass: ["Element"], properties: [{ name: "value", type: "String", isBody: true }] },
      { name: "PostScript", superClass: ["Element"], properties: [{ name: "value", type: "String", isBody: true }] },
      { name: "CalledDecisionId", superClass: ["Element"],
        properties: [{ name: "value", type: "String", isBody: true }] },
      { name: "MessageVariable", superClass: ["Element"],
        properties: [{ name: "value", type: "String", isBody: true }] },
      { name: "ServiceTaskOperator", superClass: ["Element"],
        properties: [{ name: "id", type: "String", isAttr: true }, { name: "resultVariable", type: "String", isAttr: true },
          { name: "parameterList", type: "Parameters" }] },
      { name: "Parameters", superClass: ["Element"],
        properties: [{ name: "parameters", type: "Parameter", isMany: true }] },
      { name: "Parameter", superClass: ["Element"],
        properties: [{ name: "id", type: "String", isAttr: true }, { name: "type", type: "String", isAttr: true },
          { name: "value", type: "String", isAttr: true }] },
    ],
  };

  const modeler = new window.BpmnJS({ container: "#canvas", moddleExtensions: { spiffworkflow: spiffModdle } });
  const canvas = modeler.get("canvas");
  const modeling = modeler.get("modeling");
  const moddle = modeler.get("moddle");
  const registry = modeler.get("elementRegistry");
  const overlays = modeler.get("overlays");
  const selection = modeler.get("selection");

  const statusBox = document.getElementById("status");
  const problemList = document.getElementById("problems");
  const form = document.getElementById("props");
  const hint = document.getElementById("side-hint");
  let current = null; // the user task shown in the side panel
  let marked = [];

  function status(text, kind) {
    statusBox.textContent = text;
    statusBox.className = kind || "";
  }

  // ------------------------------------------------------------------ extension properties

  function propertiesOf(bo) {
    const ext = bo.extensionElements;
    const holder = ext && (ext.get("values") || []).find((v) => v.$type === "spiffworkflow:Properties");
    return holder || null;
  }

  function readProperty(bo, name) {
    const holder = propertiesOf(bo);
    const prop = holder && holder.get("properties").find((p) => p.name === name);
    return prop ? prop.value || "" : "";
  }

  function writeProperty(element, name, value) {
    const bo = element.businessObject;
    let ext = bo.extensionElements;
    if (!ext) {
      ext = moddle.create("bpmn:ExtensionElements", { values: [] });
      ext.$parent = bo;
      modeling.updateProperties(element, { extensionElements: ext });
    }
    let holder = propertiesOf(bo);
    if (!holder) {
      holder = moddle.create("spiffworkflow:Properties", { properties: [] });
      holder.$parent = ext;
      modeling.updateModdleProperties(element, ext, { values: ext.get("values").concat([holder]) });
    }
    const list = holder.get("properties");
    const existing = list.find((p) => p.name === name);
    if (!value) {
      if (existing) modeling.updateModdleProperties(element, holder, { properties: list.filter((p) => p !== existing) });
    } else if (existing) {
      modeling.updateModdleProperties(element, existing, { value: value });
    } else {
      const prop = moddle.create("spiffworkflow:Property", { name: name, value: value });
      prop.$parent = holder;
      modeling.updateModdleProperties(element, holder, { properties: list.concat([prop]) });
    }
  }

  // ------------------------------------------------------------------ the side panel

  function laneOf(element) {
    const bo = element.businessObject;
    const lane = registry.filter((e) => e.type === "bpmn:Lane").find((e) =>
      (e.businessObject.flowNodeRef || []).includes(bo));
    return lane ? lane.businessObject.name || lane.id : null;
  }

  function ensureOption(select, value) {
    if (value && !Array.from(select.options).some((o) => o.value === value)) {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = value;
      select.appendChild(option);
    }
  }

  function fillAnchors() {
    const list = document.getElementById("anchors");
    list.replaceChildren();
    const values = ["task:created"].concat(
      registry.filter((e) => e.type === "bpmn:UserTask" && e !== current).map((e) => "stage:" + e.id));
    values.forEach((value) => {
      const option = document.createElement("option");
      option.value = value;
      list.appendChild(option);
    });
  }

  function showPanel(element) {
    current = element && element.type === "bpmn:UserTask" ? element : null;
    form.hidden = !current;
    hint.hidden = !!current;
    hint.textContent = element && !current ? T.not_user_task : T.select_task;
    if (!current) return;
    const bo = current.businessObject;
    document.getElementById("prop-id").textContent = current.id;
    document.getElementById("prop-lane").textContent = T.lane + ": " + (laneOf(current) || T.no_lane);
    form.querySelectorAll("[data-kind]").forEach((input) => {
      if (input.dataset.kind === "name") input.value = bo.name || "";
      else if (input.dataset.kind === "flag") input.checked = readProperty(bo, input.name) === "true";
      else {
        const value = readProperty(bo, input.name);
        if (input.tagName === "SELECT") ensureOption(input, value);
        input.value = value;
      }
    });
    fillAnchors();
  }

  form.addEventListener("change", (event) => {
    const input = event.target;
    if (!current || !input.dataset.kind) return;
    if (input.dataset.kind === "name") modeling.updateProperties(current, { name: input.value });
    else if (input.dataset.kind === "flag") writeProperty(current, input.name, input.checked ? "true" : "");
    else writeProperty(current, input.name, input.value.trim());
  });
  form.addEventListener("submit", (event) => event.preventDefault());

  modeler.on("selection.changed", (event) => showPanel(event.newSelection.length === 1 ? event.newSelection[0] : null));

  // ------------------------------------------------------------------ problems, validate, publish

  function clearProblems() {
    marked.forEach((id) => canvas.removeMarker(id, "bpm-problem"));
    marked = [];
    overlays.remove({ type: "bpm-problems" });
    problemList.replaceChildren();
  }

  function showProblems(problems) {
    clearProblems();
    const perElement = {};
    problems.forEach((problem) => {
      const element = problem.element_id && registry.get(problem.element_id);
      const item = document.createElement("li");
      item.dataset.elementId = problem.element_id || "";
      const where = document.createElement("strong");
      where.textContent = (element ? problem.element_id : problem.element_id || T.diagram) + ": ";
      item.appendChild(where);
      item.appendChild(document.createTextNode(problem.message));
      if (element) {
        perElement[element.id] = (perElement[element.id] || 0) + 1;
        item.addEventListener("click", () => {
          selection.select(element);
          canvas.scrollToElement(element);
        });
      }
      problemList.appendChild(item);
    });
    Object.keys(perElement).forEach((id) => {
      canvas.addMarker(id, "bpm-problem");
      marked.push(id);
      const badge = document.createElement("span");
      badge.className = "bpm-problem-badge";
      badge.textContent = String(perElement[id]);
      overlays.add(id, "bpm-problems", { position: { top: -8, right: 8 }, html: badge });
    });
  }

  async function currentXml() {
    const result = await modeler.saveXML({ format: true });
    return result.xml;
  }
  window.bpm.currentModelerXml = currentXml; // the SLA what-if panel sends the draft as drawn

  async function send(url, xml) {
    return window.bpm.api(url, { method: "POST", headers: { "Content-Type": "application/xml" }, body: xml });
  }

  function refusal(response) {
    const error = response.body && response.body.error;
    return T.request_failed + " " + (error ? error.message : String(response.status));
  }

  document.getElementById("validate").addEventListener("click", async () => {
    status(T.validating);
    const response = await send(config.urls.validate, await currentXml());
    if (!response.ok) return status(refusal(response), "bad");
    showProblems([...response.body.problems, ...(response.body.warnings || [])]);
    status(response.body.valid ? T.valid : T.problems, response.body.valid ? "ok" : "bad");
  });

  document.getElementById("publish").addEventListener("click", async () => {
    status(T.publishing);
    const response = await send(config.urls.publish, await currentXml());
    const error = response.body && response.body.error;
    if (response.status === 422 && error && error.details && error.details.problems) {
      showProblems(error.details.problems);
      return status(T.publish_refused, "bad");
    }
    if (!response.ok) return status(refusal(response), "bad");
    clearProblems();
    const number = response.body.version.version;
    status((response.body.created ? T.published : T.unchanged).replace("{n}", number), "ok");
    const link = document.createElement("a");
    link.href = config.urls.models;
    link.textContent = " " + T.back_to_list;
    link.dataset.testid = "published-link";
    statusBox.appendChild(link);
  });

  // ------------------------------------------------------------------ load

  async function load() {
    status(T.loading);
    const response = await fetch(config.urls.bpmn, { credentials: "same-origin" });
    if (!response.ok) return status(T.load_failed, "bad");
    try {
      const result = await modeler.importXML(await response.text());
      // The whole diagram in view on open, none of it under the palette.
      const palette = document.querySelector("#canvas .djs-palette");
      const container = document.getElementById("canvas").getBoundingClientRect();
      const left = palette ? palette.getBoundingClientRect().right - container.left : 0;
      window.bpm.fitDiagram(canvas, { left: left, maxScale: 1 });
      document.getElementById("canvas").dataset.ready = "true";
      status("");
      if (result.warnings && result.warnings.length) {
        showProblems(result.warnings.map((w) => ({ element_id: null, message: T.import_warnings + " " + w.message })));
      }
    } catch (err) {
      status(T.load_failed + " " + err.message, "bad");
    }
  }

  load();
})();
