// The inbox refreshes when the live feed says a case changed; a reply being typed must
// not be wiped by that: the new list waits (a button offers it) until the form is done.
"use strict";
(function () {
  function typing(region) {
    return Array.from(region.querySelectorAll("textarea, input:not([type=hidden])")).some((f) => f.value.trim() !== "");
  }
  document.addEventListener("htmx:beforeSwap", (e) => {
    const region = e.detail.target;
    if (!region || region.id !== "inbox") return;
    const trigger = e.detail.requestConfig && e.detail.requestConfig.triggeringEvent;
    const asked = trigger && (trigger.type === "refresh" || trigger.type === "hotline:done");
    if (!asked && typing(region)) {
      e.detail.shouldSwap = false;
      region.querySelector(".stale")?.removeAttribute("hidden");
    }
  });
  document.addEventListener("click", (e) => {
    const button = e.target.closest && e.target.closest("[data-refresh]");
    if (!button) return;
    const region = document.getElementById("inbox");
    if (region && window.htmx) window.htmx.trigger(region, "refresh");
  });
})();
