// WMDA secret portal: progressive enhancement only; every page works without this script.
"use strict";

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy-target], button[data-copy-text]");
  if (!button) return;
  const target = button.dataset.copyTarget ? document.getElementById(button.dataset.copyTarget) : null;
  const text = button.dataset.copyText ?? (target ? target.innerText.trim() : "");
  try {
    await navigator.clipboard.writeText(text);
    const label = button.textContent;
    button.textContent = "Copied";
    announce(button, "Copied");
    setTimeout(() => { button.textContent = label; }, 2000);
  } catch {
    button.textContent = "Copy failed: select the text and copy it";
    announce(button, "Copy failed: select the text and copy it");
  }
});

// Screen readers hear "Copied" from a polite live region (issue 18, point 4): a button's
// aria-label hides its changed text, and focus stays on the button. Inside an open modal dialog
// the region is the dialog's own, since the rest of the page is inert then.
function announce(near, text) {
  const host = near.closest("dialog[open]") ?? document.body;
  let region = host.querySelector(":scope > .copy-status");
  if (!region) {
    region = document.createElement("div");
    region.className = "copy-status visually-hidden";
    region.setAttribute("role", "status");
    region.setAttribute("aria-live", "polite");
    host.append(region);
  }
  region.textContent = "";
  setTimeout(() => { region.textContent = text; }, 50);
}

// Dialogs: a link with data-dialog opens the <dialog> of that id instead of navigating (without
// JavaScript the link leads to a page with the same form). showModal() moves focus into the
// dialog and Escape closes it.
document.addEventListener("click", (event) => {
  const opener = event.target.closest("[data-dialog]");
  if (opener) {
    const dialog = document.getElementById(opener.dataset.dialog);
    if (dialog && typeof dialog.showModal === "function") {
      event.preventDefault();
      dialog.showModal();
      const first = dialog.querySelector("input:not([type=hidden]), button");
      if (first) first.focus();
    }
    return;
  }
  const closer = event.target.closest("[data-close]");
  if (closer) {
    const dialog = closer.closest("dialog");
    if (dialog) dialog.close();
  }
});

// Reopen a dialog whose form came back with errors (the page marks it with data-open).
document.addEventListener("DOMContentLoaded", () => {
  for (const dialog of document.querySelectorAll("dialog[data-open]")) dialog.showModal();
});

// Changes that ask first (web::confirm): a form with data-confirm asks its question in a dialog
// and is sent with confirm=yes only after "yes". Without JavaScript (or <dialog>) the form is
// sent as it is and the server answers with the same question on a page.
let confirmDialog = null;
function confirmDialogFor(form) {
  if (!confirmDialog) {
    confirmDialog = document.createElement("dialog");
    confirmDialog.setAttribute("aria-labelledby", "confirm-title");
    confirmDialog.setAttribute("aria-describedby", "confirm-detail");
    const title = document.createElement("h2");
    title.id = "confirm-title";
    const detail = document.createElement("p");
    detail.id = "confirm-detail";
    const value = document.createElement("p");
    value.id = "confirm-value";
    value.append(document.createElement("span"), document.createElement("code"));
    const actions = document.createElement("div");
    actions.className = "actions";
    const yes = document.createElement("button");
    yes.type = "button";
    yes.id = "confirm-yes";
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "secondary";
    cancel.textContent = "Cancel";
    cancel.dataset.close = "";
    actions.append(yes, cancel);
    confirmDialog.append(title, detail, value, actions);
    document.body.append(confirmDialog);
  }
  const d = form.dataset;
  confirmDialog.querySelector("#confirm-title").textContent = d.confirm;
  confirmDialog.querySelector("#confirm-detail").textContent = d.confirmDetail ?? "";
  const value = confirmDialog.querySelector("#confirm-value");
  const input = d.confirmValue ? document.getElementById(d.confirmValue) : null;
  value.hidden = !input;
  if (input) {
    value.querySelector("span").textContent = `${d.confirmValueLabel ?? "New value"}: `;
    value.querySelector("code").textContent = input.value.trim();
  }
  const yes = confirmDialog.querySelector("#confirm-yes");
  yes.textContent = d.confirmButton ?? "Confirm";
  yes.className = "danger" in d ? "danger" : "";
  yes.onclick = () => {
    const field = document.createElement("input");
    field.type = "hidden";
    field.name = "confirm";
    field.value = "yes";
    form.append(field);
    confirmDialog.close();
    form.submit();
  };
  return confirmDialog;
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
  if (typeof HTMLDialogElement !== "function") return;
  event.preventDefault();
  const opener = event.submitter ?? document.activeElement;
  const dialog = confirmDialogFor(form);
  dialog.addEventListener("close", () => opener?.focus?.(), { once: true });
  dialog.showModal();
  // The safe choice has the focus: Enter or Space on it changes nothing.
  dialog.querySelector("[data-close]").focus();
});
