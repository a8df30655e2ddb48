// TruSec console: copy buttons. Progressive enhancement only: without
// JavaScript the values stay selectable text.
"use strict";
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  const text = "value" in source && source.value !== undefined ? source.value : source.textContent;
  const label = button.textContent;
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch {
    if (source.select) source.select();
    button.textContent = "Press Ctrl+C to copy";
  }
  setTimeout(() => { button.textContent = label; }, 2000);
});

// Metadata files: with JavaScript, a file chooser fills the textarea next
// to it (without, the XML is pasted). The server checks the size again.
const MAX_FILE = 256 * 1024;
for (const input of document.querySelectorAll("input[type=file][data-fill]")) {
  input.hidden = false;
  input.addEventListener("change", async () => {
    const target = document.getElementById(input.dataset.fill);
    const file = input.files && input.files[0];
    if (!target || !file) return;
    if (file.size > MAX_FILE) {
      target.value = "";
      input.setCustomValidity("This file is larger than 256 KiB.");
      input.reportValidity();
      return;
    }
    input.setCustomValidity("");
    target.value = await file.text();
  });
}
