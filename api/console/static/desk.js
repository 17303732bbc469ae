// The agent's desk: regions read again after the agent's own actions (with the command's
// position, so they show the write), the workspace follows the contact in hand, and a
// request registered during a contact is linked to it. console.js does the rest.
"use strict";
(function () {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
  const withPosition = (url, position) => (position ? url + (url.includes("?") ? "&" : "?") + "min_position=" + position : url);

  function refreshRegions(position) {
    document.querySelectorAll("[data-desk-region]").forEach((region) => {
      if (!region.id) return;
      htmx.ajax("GET", withPosition(region.dataset.deskRegion, position), { target: "#" + region.id, swap: "outerHTML" });
    });
  }

  // The workspace (screen pop, knowledge, register form) belongs to one contact: it is
  // loaded when a contact comes into hand and kept while the agent types.
  function followContact() {
    const contact = document.getElementById("desk-contact");
    const workspace = document.getElementById("workspace");
    if (!contact || !workspace) return;
    const now = contact.dataset.contact || "";
    if (now === (workspace.dataset.contact || "")) return;
    workspace.dataset.contact = now;
    htmx.ajax("GET", "/console/desk/workspace?contact=" + encodeURIComponent(now), { target: "#workspace", swap: "innerHTML" });
  }

  document.addEventListener("htmx:afterSettle", followContact);

  document.body.addEventListener("hotline:done", (e) => {
    const form = e.detail && e.detail.form;
    if (form === "register-form") return;  // linked first, then refreshed (below)
    refreshRegions(e.detail && e.detail.result && e.detail.result.position);
  });

  // Registered during a contact: link the request to the contact, then show its reference
  // and the open work orders it may duplicate.
  document.addEventListener("hotline:answered", async (e) => {
    const form = e.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.linkContact) return;
    const result = e.detail || {};
    let position = result.position;
    const answer = await fetch("/contacts/" + encodeURIComponent(form.dataset.linkContact) + "/link-request", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf(), Accept: "application/json" },
      body: JSON.stringify({ request_id: result.id }),
      credentials: "same-origin",
    });
    const linked = await answer.json().catch(() => ({}));
    if (answer.ok && linked.position) position = linked.position;
    const note = document.getElementById("registered");
    if (note) {
      note.className = "registered";
      note.textContent = "";
      const text = document.createElement("span");
      text.textContent = (form.dataset.registeredLabel || "") + " ";
      const link = document.createElement("a");
      link.href = "/console/cases/" + encodeURIComponent(result.reference || "");
      link.dir = "ltr";
      link.textContent = result.reference || "";
      link.dataset.reference = result.reference || "";
      note.append(text, link);
      if (!answer.ok) {
        const bad = document.createElement("p");
        bad.className = "error";
        const errors = JSON.parse(document.body.dataset.messages || "{}").errors || {};
        bad.textContent = (linked.error && (errors[linked.error.code] || linked.error.message)) || "";
        note.append(bad);
      }
    }
    form.reset();
    const fields = document.getElementById("rq-fields");
    if (fields) fields.textContent = "";
    htmx.ajax("GET", withPosition("/console/desk/duplicates?ref=" + encodeURIComponent(result.reference || ""), position), { target: "#duplicates", swap: "innerHTML" });
    refreshRegions(position);
  });
})();
