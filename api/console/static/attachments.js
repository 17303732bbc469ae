// The case page's own script: the attachment form uploads its file as multipart/form-data
// to the same API endpoint every client uses (console.js posts JSON, which carries no file),
// with the page's CSRF token, and shows the API's refusal (too large, wrong type) on the form.
"use strict";
(function () {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
  const messages = () => JSON.parse(document.body.dataset.messages || "{}");

  async function upload(form, submitter) {
    const errors = form.querySelector("[data-errors]");
    const field = form.querySelector('input[type="file"]');
    errors.textContent = "";
    field.removeAttribute("aria-invalid");
    form.dataset.key = form.dataset.key || crypto.randomUUID();
    if (submitter) submitter.disabled = true;
    let answer;
    try {
      answer = await fetch(form.dataset.upload, {
        method: "POST",
        headers: { "X-CSRF-Token": csrf(), "Idempotency-Key": form.dataset.key, Accept: "application/json" },
        body: new FormData(form),
        credentials: "same-origin",
      });
    } catch (_) {
      errors.textContent = messages().offline;
      if (submitter) submitter.disabled = false;
      return;
    }
    if (submitter) submitter.disabled = false;
    const result = await answer.json().catch(() => ({}));
    if (!answer.ok) {
      const error = result.error || {};
      errors.textContent = (messages().errors || {})[error.code] || error.message || messages().failed;
      field.setAttribute("aria-invalid", "true");
      field.focus();
      return;
    }
    delete form.dataset.key;
    // The list is drawn by the server: show the page again with the new attachment.
    window.location.hash = "attachments";
    window.location.reload();
  }

  document.addEventListener("submit", (e) => {
    const form = e.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.upload) return;
    e.preventDefault();
    upload(form, e.submitter);
  });
})();
