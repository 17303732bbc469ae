// The inbox refreshes when the live feed says a case changed; a reply being typed must
// not be wiped by that: the new list waits (a button offers it) until the form is done.
// A form only opened (nothing typed yet) stays open across a live refresh: the list
// changes under it, the user's place does not.
"use strict";
(function () {
  function typing(region) {
    return Array.from(region.querySelectorAll("textarea, input:not([type=hidden])")).some((f) => f.value.trim() !== "");
  }
  // Each open form as [the case's reference, the action its button does].
  function openForms(region) {
    return Array.from(region.querySelectorAll("li.case details[open]")).flatMap((d) => {
      const card = d.closest("li.case");
      const action = d.querySelector("[data-action]");
      return card && action ? [[card.dataset.reference, action.dataset.action]] : [];
    });
  }
  let reopen = [];
  document.addEventListener("htmx:beforeSwap", (e) => {
    const region = e.detail.target;
    if (!region || region.id !== "inbox") return;
    const trigger = e.detail.requestConfig && e.detail.requestConfig.triggeringEvent;
    const asked = trigger && (trigger.type === "refresh" || trigger.type === "hotline:done");
    if (!asked && typing(region)) {
      e.detail.shouldSwap = false;
      region.querySelector(".stale")?.removeAttribute("hidden");
      return;
    }
    // After an action of the user's own, its form has done its work and closes.
    reopen = asked ? [] : openForms(region);
  });
  document.addEventListener("htmx:afterSettle", () => {
    const region = document.getElementById("inbox");
    if (!region || !reopen.length) return;
    for (const [reference, action] of reopen) {
      const card = region.querySelector(`li.case[data-reference="${CSS.escape(reference)}"]`);
      const form = card && card.querySelector(`details:has([data-action="${CSS.escape(action)}"])`);
      if (form) form.open = true;
    }
    reopen = [];
  });
  document.addEventListener("click", (e) => {
    const button = e.target.closest && e.target.closest("[data-refresh]");
    if (!button) return;
    const region = document.getElementById("inbox");
    if (region && window.htmx) window.htmx.trigger(region, "refresh");
  });
})();
