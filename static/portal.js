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
    setTimeout(() => { button.textContent = label; }, 2000);
  } catch {
    button.textContent = "Copy failed: select the text and copy it";
  }
});

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
