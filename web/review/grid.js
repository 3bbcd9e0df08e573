// The thumbnail grid: one tile per image, keyboard selection, and the first screenful loaded
// before anything else (eager + high priority), the rest only when scrolled near.

import { h } from "./elements.js";

const NEAR = "600px";
const FIRST_CHUNK = 240;
const CHUNK = 200;

export class Grid {
  constructor({ onSelect, onOpen }) {
    this.items = [];
    this.tiles = [];
    this.index = -1;
    this.onSelect = onSelect;
    this.el = h("div", { class: "fw-grid", role: "listbox", "aria-label": "Images to review" });
    this.el.addEventListener("click", (event) => this.#clicked(event, false));
    this.el.addEventListener("dblclick", (event) => this.#clicked(event, true));
    this.onOpen = onOpen;
    this.observer = new IntersectionObserver((entries) => this.#reveal(entries), {
      root: this.el,
      rootMargin: NEAR,
    });
  }

  /** Replace the tiles; `thumb(item)` gives a thumbnail URL, `labels` the stage's label specs. */
  render(items, thumb, labels) {
    this.observer.disconnect();
    this.generation = (this.generation || 0) + 1;
    Object.assign(this, { items, thumb, tiles: [], index: -1, eager: Infinity });
    this.labels = new Map(labels.map((spec) => [spec.name, spec]));
    this.el.replaceChildren();
    this.el.scrollTop = 0;
    this.#append(FIRST_CHUNK);
    this.eager = this.#firstScreenCount();
    this.firstScreen = this.tiles.slice(0, this.eager);
    this.tiles.forEach((tile, number) => this.#load(tile, number));
    this.#appendLater(this.generation);
    if (items.length) this.select(0, false);
  }

  /** Resolves once every thumbnail of the first screenful has loaded (or failed). */
  firstScreenLoaded() {
    return Promise.all(
      (this.firstScreen || []).map((tile) => {
        const img = tile.firstChild;
        if (img.complete && img.src) return true;
        return new Promise((resolve) => {
          img.addEventListener("load", resolve, { once: true });
          img.addEventListener("error", resolve, { once: true });
        });
      }),
    );
  }

  get selected() {
    return this.items[this.index] || null;
  }

  indexOf(id) {
    return this.items.findIndex((item) => item.id === id);
  }

  select(number, scroll = true) {
    if (!this.items.length) return;
    const next = Math.max(0, Math.min(this.items.length - 1, number));
    this.#append(next + 1);
    this.tiles[this.index]?.classList.remove("fw-selected");
    this.tiles[this.index]?.setAttribute("aria-selected", "false");
    this.index = next;
    const tile = this.tiles[next];
    tile.classList.add("fw-selected");
    tile.setAttribute("aria-selected", "true");
    if (scroll) tile.scrollIntoView({ block: "nearest" });
    this.onSelect?.(this.items[next]);
  }

  move(delta) {
    this.select(this.index + delta);
  }

  moveRows(rows) {
    this.select(this.index + rows * this.columns());
  }

  /** Tiles per row, read from the layout (the grid reflows with the panel's width). */
  columns() {
    const top = this.tiles[0]?.offsetTop;
    const count = this.tiles.findIndex((tile) => tile.offsetTop !== top);
    return count > 0 ? count : Math.max(1, this.tiles.length);
  }

  /** Redraw one tile's verdict after a decision or undo. */
  update(item) {
    const number = this.indexOf(item.id);
    if (number < 0) return;
    this.items[number] = item;
    this.#paint(this.tiles[number], item);
  }

  destroy() {
    this.observer.disconnect();
  }

  #paint(tile, item) {
    const spec = this.labels.get(item.label);
    tile.dataset.label = item.label || "";
    tile.style.setProperty("--fw-label", spec ? spec.color : "transparent");
    const badge = tile.querySelector(".fw-badge");
    badge.textContent = spec ? (item.auto ? `${spec.title} (auto)` : spec.title) : "";
    badge.classList.toggle("fw-auto", Boolean(item.auto));
    const by = item.auto ? "auto-review, not a human" : item.reviewer ? `by ${item.reviewer}` : null;
    badge.title = [item.reason_text, item.note, by].filter(Boolean).join(" · ");
  }

  // Tiles are added in chunks: the first screenful at once, the rest a frame at a time, so a
  // 1000-image dataset shows (and starts loading) its first thumbnails without waiting for all.
  #append(count) {
    const end = Math.min(count, this.items.length);
    if (this.tiles.length >= end) return;
    const fragment = document.createDocumentFragment();
    for (let number = this.tiles.length; number < end; number += 1) {
      const tile = this.#tile(this.items[number], number, this.thumb(this.items[number]));
      this.tiles.push(tile);
      fragment.append(tile);
      if (this.eager !== Infinity) this.#load(tile, number);
    }
    this.el.append(fragment);
  }

  #appendLater(generation) {
    if (generation !== this.generation || this.tiles.length >= this.items.length) return;
    requestAnimationFrame(() => {
      if (generation !== this.generation) return;
      this.#append(this.tiles.length + CHUNK);
      this.#appendLater(generation);
    });
  }

  #load(tile, number) {
    const img = tile.firstChild;
    if (number < this.eager) {
      img.fetchPriority = "high";
      img.src = img.dataset.src;
    } else {
      this.observer.observe(tile);
    }
  }

  #tile(item, number, src) {
    const tile = h(
      "div",
      { class: "fw-tile", role: "option", "aria-selected": "false", dataset: { id: item.id, n: number } },
      h("img", { alt: item.file, decoding: "async", dataset: { src }, draggable: false }),
      h("span", { class: "fw-badge" }),
      h("span", { class: "fw-num" }, String(number + 1)),
      item.gap ? h("span", { class: `fw-fills${item.gap.suggested ? " fw-suggested" : ""}`,
        title: `rank ${item.gap.rank}: ${item.gap.adds.join("; ") || "adds nothing new"}` },
      `${item.gap.suggested ? "★ " : ""}${item.gap.score >= 1 ? "fills a gap" : ""}`) : null,
    );
    this.#paint(tile, item);
    return tile;
  }

  #firstScreenCount() {
    const first = this.tiles[0];
    if (!first) return 0;
    const width = Math.max(1, first.offsetWidth);
    const height = Math.max(1, first.offsetHeight);
    const columns = Math.max(1, Math.floor(this.el.clientWidth / width));
    const rows = Math.ceil((this.el.clientHeight || window.innerHeight) / height);
    return Math.min(this.tiles.length, columns * rows);
  }

  #reveal(entries) {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      const img = entry.target.firstChild;
      img.src = img.dataset.src;
      this.observer.unobserve(entry.target);
    }
  }

  #clicked(event, open) {
    const tile = event.target.closest(".fw-tile");
    if (!tile) return;
    this.select(Number(tile.dataset.n), false);
    if (open) this.onOpen?.(this.selected);
  }
}
