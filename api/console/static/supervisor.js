// The supervisor's and the control office's lists refresh live; a refresh must not wipe a
// form the user is filling in. A region marked data-hold-while-editing skips a refresh
// while one of its forms is open or focused, and catches up when the user leaves it.
"use strict";
(function () {
  const editing = (region) => {
    const active = document.activeElement;
    return Boolean(region.querySelector("details[open]")) ||
      Boolean(active && region.contains(active) && active.matches("input, select, textarea"));
  };

  document.addEventListener("htmx:beforeRequest", (e) => {
    const region = e.detail.elt;
    if (!region.matches || !region.matches("[data-hold-while-editing]")) return;
    if (region.dataset.force) { delete region.dataset.force; return; }
    if (editing(region)) { e.preventDefault(); region.dataset.stale = "1"; }
  });

  // An action just done: the region shows its result at once, open forms or not.
  document.body.addEventListener("hotline:done", () => {
    document.querySelectorAll("[data-hold-while-editing]").forEach((r) => { r.dataset.force = "1"; });
  });

  // Left the form: catch up with what changed meanwhile.
  const catchUp = (e) => {
    const region = e.target.closest && e.target.closest("[data-hold-while-editing]");
    if (!region || !region.dataset.stale) return;
    setTimeout(() => {
      if (!region.isConnected || editing(region)) return;
      delete region.dataset.stale;
      window.htmx.trigger(region, "hotline:catch-up");
    }, 0);
  };
  document.addEventListener("focusout", catchUp);
  document.addEventListener("toggle", catchUp, true);
})();
