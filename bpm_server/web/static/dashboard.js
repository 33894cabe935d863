// The dashboard's quick periods: "last N days" fills the dates (ending on the
// server's today, which follows the deployment's clock) and shows the period.
(function () {
  "use strict";
  const form = document.getElementById("period");
  if (!form) return;
  const iso = (d) => d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" +
    String(d.getDate()).padStart(2, "0");
  form.querySelectorAll("button[data-days]").forEach((button) => {
    button.addEventListener("click", () => {
      const days = Number(button.dataset.days);
      const [y, m, d] = form.dataset.today.split("-").map(Number);
      const last = new Date(y, m - 1, d);
      const first = new Date(y, m - 1, d - (days - 1));
      form.elements.from.value = iso(first);
      form.elements.to.value = iso(last);
      form.submit();
    });
  });
})();
