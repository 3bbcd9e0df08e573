// The reason picker that opens on reject / needs correction: one key per preset reason, or
// "other" to type the reason in words. Resolves with the reason, or null when cancelled.

import { h } from "./elements.js";

export class ReasonPicker {
  constructor(host, { title, reasons, color }) {
    this.presets = Object.entries(reasons); // [key, title]
    this.input = h("input", {
      class: "fw-reason-text",
      type: "text",
      maxLength: 500,
      placeholder: "describe the problem, then Enter",
    });
    this.promise = new Promise((resolve) => (this.resolve = resolve));
    const choices = this.presets.map(([key, text], n) =>
      h("button", { class: "fw-reason", type: "button", dataset: { reason: key }, onclick: () => this.#finish(key) },
        h("kbd", {}, String(n + 1)), text),
    );
    const other = this.presets.length + 1;
    this.el = h(
      "div",
      { class: "fw-modal", role: "dialog", "aria-label": `Reason for ${title}` },
      h(
        "div",
        { class: "fw-modal-box", style: { borderColor: color } },
        h("div", { class: "fw-modal-title" }, `Why "${title}"?`),
        ...choices,
        h("label", { class: "fw-reason fw-reason-other" }, h("kbd", {}, `${other}`), "other: ", this.input),
        h("div", { class: "fw-modal-hint" }, `keys 1-${other} · Enter confirms · Esc cancels`),
      ),
    );
    this.el.addEventListener("click", (event) => event.target === this.el && this.#finish(null));
    host.append(this.el);
    this.el.querySelector(".fw-reason")?.focus();
  }

  /** Route a key press while the picker is open (typing in the text field stays normal typing). */
  handleKey(event) {
    event.stopPropagation();
    if (event.target === this.input) {
      if (event.key === "Enter" || event.key === "Escape") event.preventDefault();
      if (event.key === "Enter") this.#finish(this.input.value.trim() || null, true);
      if (event.key === "Escape") this.#finish(null);
      return;
    }
    if (event.key === "Tab") return;
    event.preventDefault();
    if (event.key === "Escape") return this.#finish(null);
    const number = Number(event.key);
    if (number >= 1 && number <= this.presets.length) return this.#finish(this.presets[number - 1][0]);
    if (number === this.presets.length + 1 || event.key === "o") return this.input.focus();
    if (event.key === "Enter") {
      const focused = document.activeElement?.dataset?.reason;
      if (focused) this.#finish(focused);
    }
  }

  #finish(reason, typed = false) {
    if (typed && !reason) return;
    this.el.remove();
    this.resolve(reason);
  }

  get result() {
    return this.promise;
  }
}
