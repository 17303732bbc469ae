// Filing a request: when the API refuses it, the contact fields the jurisdiction requires
// (data-required, from the same policy POST /requests applies) that are still empty are
// marked, so the citizen sees which ones the refusal is about.
"use strict";
(function () {
  const form = document.getElementById("file-request");
  if (!form) return;
  const summary = form.querySelector("[data-errors]");
  const required = (form.dataset.required || "").split(" ").filter(Boolean);
  new MutationObserver(() => {
    if (!summary.textContent.trim()) return;
    for (const name of required) {
      const field = form.querySelector(`[name="${CSS.escape(name)}"]`);
      if (!field || field.value.trim() !== "" || field.getAttribute("aria-invalid") === "true") continue;
      field.setAttribute("aria-invalid", "true");
      const note = document.createElement("span");
      note.className = "field-error";
      note.id = "err-" + name.replace(/\W/g, "-");
      note.textContent = form.dataset.requiredMessage || "Required";
      field.setAttribute("aria-describedby", note.id);
      field.insertAdjacentElement("afterend", note);
    }
  }).observe(summary, { childList: true, characterData: true, subtree: true });
})();
