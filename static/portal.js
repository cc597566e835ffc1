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
