"use strict";
// Light/dark theme: follows the system (prefers-color-scheme) unless the user picked one with the
// toggle; the choice is kept in localStorage. A classic script loaded without `defer` (a module
// cannot block the first paint), so the page never flashes; it exports nothing: the effective
// theme is the root element's `color-scheme`, and a change is the `fitscope:theme` event.
(() => {
  const KEY = "fitscope.theme";
  const root = document.documentElement;
  const media = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function stored() {
    try {
      const v = localStorage.getItem(KEY);
      return v === "dark" || v === "light" ? v : null;
    } catch (err) {
      return null; // storage may be disabled; the system preference still applies
    }
  }

  function effective() {
    return stored() || (media && media.matches ? "dark" : "light");
  }

  function apply() {
    const picked = stored();
    if (picked) root.dataset.theme = picked;
    else delete root.dataset.theme;
    root.style.colorScheme = effective();
  }

  function set(theme) {
    try {
      localStorage.setItem(KEY, theme);
    } catch (err) {
      // not persisted; applied for this page only
      root.dataset.theme = theme;
    }
    apply();
    window.dispatchEvent(new CustomEvent("fitscope:theme", { detail: effective() }));
  }

  function toggle() {
    set(effective() === "dark" ? "light" : "dark");
  }

  // Wires every `[data-theme-toggle]` button once the document is parsed.
  function wire() {
    for (const btn of document.querySelectorAll("[data-theme-toggle]")) {
      const label = () => {
        const next = effective() === "dark" ? "light" : "dark";
        btn.textContent = next === "dark" ? "Dark theme" : "Light theme";
        btn.setAttribute("aria-label", `Switch to the ${next} theme`);
      };
      label();
      btn.addEventListener("click", () => { toggle(); label(); });
      window.addEventListener("fitscope:theme", label);
    }
  }

  if (media && media.addEventListener) {
    media.addEventListener("change", () => {
      apply();
      window.dispatchEvent(new CustomEvent("fitscope:theme", { detail: effective() }));
    });
  }
  apply();
  document.addEventListener("DOMContentLoaded", wire);
})();
