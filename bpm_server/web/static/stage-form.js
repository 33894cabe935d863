// Checks a stage form in the browser before it is sent, and writes the
// messages next to the fields. The server checks everything again; its
// messages arrive in the same places when the page comes back.
(function () {
  "use strict";
  const form = document.getElementById("stage-form");
  if (!form) return;
  const messages = JSON.parse(form.dataset.messages || "{}");
  const say = (key, n) => (messages[key] || key).replace("%(n)s", String(n));

  function problem(input) {
    const value = input.type === "checkbox" ? input.checked : input.value.trim();
    if (input.type === "checkbox") return input.required && !value ? say("checkbox") : null;
    if (value === "") return input.required ? say("required") : null;
    const min = parseInt(input.getAttribute("minlength") || "0", 10);
    const max = parseInt(input.getAttribute("maxlength") || "0", 10);
    if (min && value.length < min) return say("short", min);
    if (max && value.length > max) return say("long", max);
    if (input.type === "url" && !/^[A-Za-z][A-Za-z0-9+.\-]*:\S+$/.test(value)) return say("url");
    if (input.type === "date" && !/^\d{4}-\d{2}-\d{2}$/.test(value)) return say("date");
    if (input.type === "number" && input.getAttribute("step") === "1" && !/^-?\d+$/.test(value)) return say("number");
    const pattern = input.dataset.pattern;
    if (pattern) {
      try {
        if (!new RegExp(pattern, "u").test(value)) return say("pattern");
      } catch (e) { /* a pattern JavaScript cannot read: the server checks it */ }
    }
    return null;
  }

  function check() {
    let first = null;
    form.querySelectorAll(".field").forEach(function (field) {
      const input = field.querySelector("input, select, textarea");
      const slot = field.querySelector(".field-error");
      if (!input || !slot) return;
      const message = problem(input);
      slot.textContent = message || "";
      input.classList.toggle("invalid", Boolean(message));
      input.setAttribute("aria-invalid", message ? "true" : "false");
      if (message && !first) first = input;
    });
    return first;
  }

  form.addEventListener("submit", function (event) {
    const first = check();
    if (first) {
      event.preventDefault();
      first.focus();
    }
  });
})();
