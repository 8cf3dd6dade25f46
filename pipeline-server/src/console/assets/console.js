// The console's script: progressive enhancement only (every page works without it).
// No inline handlers exist anywhere; everything is wired here from data-* attributes.
"use strict";

// Copy buttons: <button data-copy="ID"> copies the text of the element with that id.
function wireCopyButtons() {
  document.querySelectorAll("button[data-copy]").forEach((b) => {
    b.addEventListener("click", () => {
      const el = document.getElementById(b.dataset.copy);
      if (!el || !navigator.clipboard) return;
      navigator.clipboard.writeText(el.textContent).then(() => {
        b.textContent = "Copied";
        setTimeout(() => { b.textContent = "Copy"; }, 1500);
      }, () => {});
    });
  });
}

// Forms with data-confirm ask before they submit.
function wireConfirmations() {
  document.querySelectorAll("form[data-confirm]").forEach((f) => {
    f.addEventListener("submit", (e) => {
      if (!window.confirm(f.dataset.confirm)) e.preventDefault();
    });
  });
}

// == live updates (owned by job.rs / datum.rs) ==

document.addEventListener("DOMContentLoaded", () => {
  wireCopyButtons();
  wireConfirmations();
});
