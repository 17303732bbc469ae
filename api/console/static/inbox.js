// The inbox refreshes when the live feed says a case changed; a reply being typed must
// not be wiped by that: the new list waits (a button offers it) until the form is done.
// A form only opened (nothing typed yet) stays open across a refresh: the list changes
// under it, the user's place does not. The form just sent has done its work and closes.
"use strict";
(function () {
  function typing(region) {
    return Array.from(region.querySelectorAll("textarea, input:not([type=hidden])")).some((f) => f.value.trim() !== "");
  }
  // A form by its card (a case's reference, a work order's id) and what it posts to.
  function keyOf(details) {
    const card = details.closest("[data-reference], [data-order]");
    const form = details.querySelector("form[data-api]");
    if (!card || !form) return null;
    return `${card.dataset.reference || ""}|${card.dataset.order || ""}|${form.dataset.api}`;
  }
  let sent = null; // the key of the form the user sent last
  let reopen = [];
  document.addEventListener("submit", (e) => {
    const details = e.target.closest && e.target.closest("#inbox details");
    sent = details ? keyOf(details) : null;
  }, true);
  document.addEventListener("htmx:beforeSwap", (e) => {
    const region = e.detail.target;
    if (!region || region.id !== "inbox") return;
    const trigger = e.detail.requestConfig && e.detail.requestConfig.triggeringEvent;
    const asked = trigger && (trigger.type === "refresh" || trigger.type === "hotline:done");
    if (!asked && typing(region)) {
      e.detail.shouldSwap = false;
      region.querySelector(".stale")?.removeAttribute("hidden");
    }
    if (!e.detail.shouldSwap) return; // nothing replaced (held, or an error answer): nothing to restore
    const done = trigger && trigger.type === "hotline:done" ? sent : null;
    reopen = Array.from(region.querySelectorAll("details[open]")).map(keyOf).filter((k) => k && k !== done);
  });
  document.addEventListener("htmx:afterSwap", () => {
    const region = document.getElementById("inbox");
    if (!region || !reopen.length) return;
    const wanted = new Set(reopen);
    reopen = [];
    region.querySelectorAll("details").forEach((d) => {
      if (wanted.has(keyOf(d))) d.open = true;
    });
  });
  document.addEventListener("click", (e) => {
    const button = e.target.closest && e.target.closest("[data-refresh]");
    if (!button) return;
    const region = document.getElementById("inbox");
    if (region && window.htmx) window.htmx.trigger(region, "refresh");
  });
})();
