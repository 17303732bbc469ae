// The console's own script: forms post JSON to the API, errors are shown on the fields
// they name, the page's regions refresh when the live feed or an action says so, and a
// few keyboard shortcuts. htmx (vendor/) does the fragment swapping and the live feed.
"use strict";
(function () {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
  const messages = () => JSON.parse(document.body.dataset.messages || "{}");
  // Citizens sign in on the portal, staff on the console.
  const signInPage = () =>
    (location.pathname.startsWith("/portal") ? "/portal/sign-in" : "/console/sign-in") + "?next=" + encodeURIComponent(location.pathname);

  // htmx's own requests carry the CSRF token too.
  document.addEventListener("htmx:configRequest", (e) => { e.detail.headers["X-CSRF-Token"] = csrf(); });
  // A session that ended while the page was open: back to sign-in.
  document.addEventListener("htmx:responseError", (e) => {
    if (e.detail.xhr.status === 401) window.location.assign(signInPage());
  });

  function toast(text, bad) {
    const box = document.getElementById("toast");
    if (!box) return;
    const line = document.createElement("div");
    line.className = "message" + (bad ? " bad" : "");
    line.textContent = text;
    box.appendChild(line);
    setTimeout(() => line.remove(), bad ? 8000 : 3000);
  }

  // name="contact.phone" → {"contact": {"phone": …}}; data-type says how to read a value.
  function formJson(form) {
    const body = {};
    for (const field of form.elements) {
      if (!field.name || field.disabled || field.dataset.skip !== undefined) continue;
      if ((field.type === "checkbox" || field.type === "radio") && !field.checked && field.dataset.type !== "bool") continue;
      let value = field.type === "checkbox" && field.dataset.type === "bool" ? field.checked : field.value;
      if (typeof value === "string") {
        value = value.trim();
        if (value === "" && field.dataset.keepEmpty === undefined) continue;
      }
      const type = field.dataset.type;
      if (type === "int") value = parseInt(value, 10);
      else if (type === "float") value = parseFloat(value);
      else if (type === "list") value = value.split(/[,\n]/).map((v) => v.trim()).filter(Boolean);
      else if (type === "json") value = JSON.parse(value);
      else if (type === "datetime" && value) value = new Date(value).toISOString();
      const path = field.name.split(".");
      let at = body;
      path.slice(0, -1).forEach((part) => { at = at[part] = at[part] || {}; });
      const last = path[path.length - 1];
      if (field.multiple) value = Array.from(field.selectedOptions).map((o) => o.value);
      if (last.endsWith("[]")) (at[last.slice(0, -2)] = at[last.slice(0, -2)] || []).push(value);
      else at[last] = value;
    }
    return body;
  }

  function clearErrors(form) {
    form.querySelectorAll("[aria-invalid]").forEach((f) => f.removeAttribute("aria-invalid"));
    form.querySelectorAll(".field-error").forEach((m) => m.remove());
    const summary = form.querySelector("[data-errors]");
    if (summary) summary.textContent = "";
  }

  function showErrors(form, error) {
    const summary = form.querySelector("[data-errors]");
    const problems = (error.details && error.details.problems) || [];
    // The domain names fields in "fields" (refused) or "missing" (required, not given).
    // One field in "field" (a phone number that cannot be read).
    const details = error.details || {};
    const fields = [...(details.fields || []), ...(details.missing || []), ...(details.field ? [details.field] : [])];
    let placed = 0;
    for (const p of problems) {
      const field = form.querySelector(`[name="${CSS.escape(p.field)}"]`);
      if (!field) continue;
      field.setAttribute("aria-invalid", "true");
      const note = document.createElement("span");
      note.className = "field-error";
      note.id = "err-" + p.field.replace(/\W/g, "-");
      note.textContent = (messages().problems || {})[p.type] || p.problem;
      field.setAttribute("aria-describedby", note.id);
      field.insertAdjacentElement("afterend", note);
      placed += 1;
    }
    for (const name of fields) {
      const field = form.querySelector(`[name="${CSS.escape(name)}"], [name$=".${CSS.escape(name)}"]`);
      field?.setAttribute("aria-invalid", "true");
    }
    // People read the message for the refusal's code in their language; the API's own
    // (English, for developers) when the code has none.
    const text = (messages().errors || {})[error.code] || error.message || messages().failed;
    if (summary) summary.textContent = text;
    else toast(text, true);
    if (!placed) form.querySelector("[aria-invalid]")?.focus();
  }

  // <form data-api="/requests" data-then="/console/cases/{reference}" data-done="Registered">
  async function submitJson(form, submitter) {
    clearErrors(form);
    const url = form.dataset.api.replace(/\{(\w+)\}/g, (_, k) => encodeURIComponent(form.elements[k]?.value || ""));
    form.dataset.key = form.dataset.key || crypto.randomUUID();  // a retry of the same submission is harmless
    if (submitter) submitter.disabled = true;
    let answer;
    try {
      const body = form.dataset.body === "none" ? undefined : JSON.stringify(formJson(form));
      answer = await fetch(url, {
        method: form.dataset.method || "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf(), "Idempotency-Key": form.dataset.key, Accept: "application/json" },
        body, credentials: "same-origin",
      });
    } catch (_) {
      toast(messages().offline, true);
      if (submitter) submitter.disabled = false;
      return;
    }
    if (submitter) submitter.disabled = false;
    if (answer.status === 401) { window.location.assign(signInPage()); return; }
    const result = await answer.json().catch(() => ({}));
    if (!answer.ok) { showErrors(form, result.error || {}); return; }
    delete form.dataset.key;
    toast(form.dataset.done || messages().saved);
    document.body.dispatchEvent(new CustomEvent("hotline:done", { detail: { form: form.id, result } }));
    form.dispatchEvent(new CustomEvent("hotline:answered", { bubbles: true, detail: result }));
    if (form.dataset.then) {
      window.location.assign(form.dataset.then.replace(/\{(\w+)\}/g, (_, k) => encodeURIComponent(result[k] ?? "")));
    } else if (form.dataset.reset !== undefined) {
      form.reset();
    }
  }

  document.addEventListener("submit", (e) => {
    const form = e.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.api) return;
    e.preventDefault();
    submitJson(form, e.submitter);
  });

  // <select data-autosubmit>: the language menu changes at once.
  document.addEventListener("change", (e) => {
    if (e.target.matches && e.target.matches("[data-autosubmit]")) e.target.form.requestSubmit();
  });

  // Alt+<key> presses the button or link marked data-key="<key>" (shown as a <kbd> hint).
  document.addEventListener("keydown", (e) => {
    if (!e.altKey || e.ctrlKey || e.metaKey) return;
    const target = document.querySelector(`[data-key="${CSS.escape(e.key.toLowerCase())}"]:not([disabled])`);
    if (!target) return;
    e.preventDefault();
    if (target.matches("input, select, textarea")) target.focus();
    else target.click();
  });

  // An offer arriving: a short ring (Web Audio, no file) and the accept button focused.
  function ring(el) {
    try {
      const ctx = new (window.AudioContext || window.webkitAudioContext)();
      const tone = ctx.createOscillator(); const gain = ctx.createGain();
      tone.frequency.value = 660; gain.gain.value = 0.08;
      tone.connect(gain); gain.connect(ctx.destination);
      tone.start(); tone.stop(ctx.currentTime + 0.4);
    } catch (_) { /* no sound device: the flashing card still shows it */ }
    el.querySelector("[data-autofocus]")?.focus();
  }
  document.addEventListener("htmx:afterSettle", (e) => {
    const offer = e.target.querySelector?.("[data-ring]");
    if (offer && offer.dataset.rang !== "yes") { offer.dataset.rang = "yes"; ring(offer); }
  });
})();
