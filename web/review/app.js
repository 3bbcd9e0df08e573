// The review page: toolbar, progress, coverage, grid and large view, wired to the keyboard.
// mountReview(root, options) works in the ComfyUI sidebar and as the standalone page; it has
// no side effects at import, because ComfyUI imports every .js file of the pack.

import { ReviewClient } from "./api.js";
import { clear, h } from "./elements.js";
import { Grid } from "./grid.js";
import { actionFor, buildKeymap, describeKeys } from "./keys.js";
import { renderCoverage, renderProgress } from "./panels.js";
import { ReasonPicker } from "./reasons.js";
import { ReviewSession } from "./session.js";
import { Viewer } from "./viewer.js";

const STORAGE_KEY = "flenwheel.review.last";
const POLL_MS = 5000;
const FILTERS = ["all", "pending", "decided"];

/**
 * options: apiBase (URL prefix of the API), keyTarget (element or document that receives keys;
 * default: the root), popoutUrl (link to the full page, in ComfyUI), initial ({project, stage,
 * version, filter} to open first).
 */
export function mountReview(root, options) {
  const app = new ReviewApp(root, options);
  app.start();
  return app;
}

class ReviewApp {
  constructor(root, { apiBase, keyTarget, popoutUrl, initial = {} }) {
    this.root = root;
    this.client = new ReviewClient(apiBase);
    this.session = new ReviewSession(this.client);
    this.initial = { ...remembered(), ...Object.fromEntries(Object.entries(initial).filter(([, v]) => v)) };
    this.keyTarget = keyTarget || root;
    this.grid = new Grid({ onSelect: (item) => this.#selected(item), onOpen: () => this.#showViewer() });
    this.viewer = new Viewer();
    this.#build(popoutUrl);
    this.onKey = (event) => this.#key(event);
    this.keyTarget.addEventListener("keydown", this.onKey);
    this.timer = setInterval(() => this.#poll(), POLL_MS);
  }

  async start() {
    try {
      const [stages, projects] = await Promise.all([this.client.stages(), this.client.projects()]);
      this.stages = new Map(stages.map((stage) => [stage.name, stage]));
      if (!projects.length) {
        return this.#empty("No FLENwheel projects yet. Run a FLENwheel Project node (or `flenwheel init`) first.");
      }
      fill(this.projectSelect, projects.map((p) => [p.key, `${p.name} (${p.folder})`]));
      this.projectSelect.hidden = projects.length < 2;
      this.projectSelect.value = projects.some((p) => p.key === this.initial.project)
        ? this.initial.project : projects[0].key;
      await this.#openProject();
    } catch (error) {
      this.#error(error);
    }
  }

  /** Switch to what a ReviewGate node is waiting for (ComfyUI event), unless already there. */
  async focusOn({ project, stage, version }) {
    const here = this.session;
    if (here.project === project && here.stage === stage && here.version === version) return;
    this.initial = { ...this.initial, project, stage, version, filter: "pending" };
    await this.start();
  }

  async refresh() {
    if (this.session.project) await this.#openDataset(this.grid.selected?.id);
  }

  destroy() {
    clearInterval(this.timer);
    this.keyTarget.removeEventListener("keydown", this.onKey);
    this.grid.destroy();
    this.root.replaceChildren();
  }

  // Layout -----------------------------------------------------------------------------------
  #build(popoutUrl) {
    this.projectSelect = h("select", { class: "fw-project", title: "Project", onchange: () => this.#openProject() });
    this.datasetSelect = h("select", { class: "fw-dataset", title: "Dataset", onchange: () => this.#openDataset() });
    this.filterSelect = h("select", { class: "fw-filter", title: "Show", onchange: () => this.#openDataset() });
    this.status = h("span", { class: "fw-status", "aria-live": "polite" });
    this.progress = h("div", { class: "fw-progress" });
    this.coverage = h("div", { class: "fw-coverage", hidden: true });
    this.message = h("div", { class: "fw-message", hidden: true });
    this.help = h("div", { class: "fw-help", hidden: true });
    const toolbar = h("div", { class: "fw-toolbar" },
      h("b", { class: "fw-title" }, "FLENwheel review"),
      this.projectSelect, this.datasetSelect, this.filterSelect,
      h("button", { type: "button", title: "Reload", onclick: () => this.refresh() }, "⟳"),
      h("button", { type: "button", title: "Keyboard keys (?)", onclick: () => this.#toggleHelp() }, "?"),
      popoutUrl ? h("a", { class: "fw-popout", href: popoutUrl, target: "_blank", title: "Open in a tab" }, "⤢")
        : null,
      this.status);
    this.main = h("div", { class: "fw-main" }, this.grid.el, this.viewer.el, this.help);
    this.root.classList.add("fw-review");
    if (!this.root.hasAttribute("tabindex")) this.root.tabIndex = 0;
    clear(this.root, toolbar, this.message, this.progress, this.coverage, this.main);
    this.root.addEventListener("pointerdown", () => this.keyTarget === this.root && this.root.focus());
  }

  // Loading ----------------------------------------------------------------------------------
  async #openProject() {
    const project = this.projectSelect.value;
    const { stage, version, filter } = this.initial;
    if (stage && version && project === this.initial.project) {
      this.session.prefetch(project, stage, version, filter || "all");
    }
    const { datasets } = await this.client.datasets(project);
    if (!datasets.length) {
      this.session.project = null;
      return this.#empty("Nothing to review yet: enrich sources or generate images first.");
    }
    fill(this.datasetSelect, datasets.map((d) =>
      [`${d.stage}:${d.version}`, datasetTitle(d)]));
    const wanted = `${this.initial.stage}:${this.initial.version}`;
    const firstPending = datasets.find((d) => d.pending) || datasets[datasets.length - 1];
    this.datasetSelect.value = datasets.some((d) => `${d.stage}:${d.version}` === wanted)
      ? wanted : `${firstPending.stage}:${firstPending.version}`;
    await this.#openDataset(null, this.initial.filter);
  }

  async #openDataset(keepId = null, filter = null) {
    const [stage, version] = this.datasetSelect.value.split(":");
    const spec = this.stages.get(stage);
    if (!spec) return;
    if (this.spec !== spec) {
      this.spec = spec;
      this.keymap = buildKeymap(spec);
      fill(this.filterSelect, [...FILTERS, ...spec.labels.map((l) => l.name)].map((f) => [f, `show: ${f}`]));
    }
    if (filter) this.filterSelect.value = filter;
    if (!this.filterSelect.value) this.filterSelect.value = "all";
    this.root.dataset.ready = "";
    this.#say("loading…");
    try {
      const project = this.projectSelect.value;
      const items = await this.session.load(project, stage, version, this.filterSelect.value);
      performance.mark("fw-items-loaded");
      remember({ project, stage, version, filter: this.filterSelect.value });
      this.message.hidden = true;
      this.grid.render(items, (item) => this.#thumb(spec.dataset_stage, item.id), spec.labels);
      performance.mark("fw-grid-rendered");
      const keep = keepId ? this.grid.indexOf(keepId) : -1;
      if (keep >= 0) this.grid.select(keep);
      this.#panels();
      if (!items.length) this.#say("no images match this filter");
      else this.#say("");
      if (this.viewer.open) this.#showViewer();
      await this.grid.firstScreenLoaded();
      performance.mark("fw-first-screen");
      this.root.dataset.ready = "1";
    } catch (error) {
      this.#error(error);
    }
  }

  #thumb(dataset, id, version = this.session.version) {
    return this.client.thumbUrl(this.session.project, dataset, version, id);
  }

  #panels() {
    const summary = this.session.summary;
    const option = this.datasetSelect.selectedOptions[0];
    if (option && summary) this.datasetSelect.title = option.textContent = datasetTitle(summary);
    renderProgress(this.progress, summary, this.spec.labels);
    renderCoverage(this.coverage, summary?.coverage, this.grid.selected, this.#coverageActions());
  }

  #coverageActions() {
    return {
      best: this.session.best,
      suggested: this.session.items.filter((item) => item.gap?.suggested && !item.label).length,
      onSuggest: (count) => this.#suggest(count),
      onConfirm: () => this.#confirmSuggested(),
    };
  }

  /** Reload the pristine candidates with the best `count` gap-fillers marked (none decided). */
  async #suggest(count) {
    this.session.best = count;
    await this.#openDataset(this.grid.selected?.id);
  }

  /** The person confirms the suggestions: one pristine decision each, stored under their name. */
  #confirmSuggested() {
    const waiting = this.session.items.filter((item) => item.gap?.suggested && !item.label);
    for (const item of waiting) {
      const shown = this.session.decide(item, "pristine", null, null, {
        onSaved: (saved, summary) => this.#applied(saved, summary),
        onFailed: (before, error) => {
          this.grid.update(before);
          this.#error(error);
        },
      });
      this.grid.update(shown);
    }
    this.#say(`${waiting.length} suggested picks confirmed as pristine`);
  }

  async #poll() {
    if (!this.session.project || document.hidden || this.session.inFlight) return;
    try {
      const summary = await this.session.refreshSummary();
      const local = this.session.items.filter((item) => !item.label).length;
      const filtered = this.filterSelect.value !== "all";
      if (!filtered && summary.pending !== local && !this.session.inFlight) return this.refresh();
      this.#panels();
    } catch (error) {
      this.#say(error.message);
    }
  }

  // Keys and actions -------------------------------------------------------------------------
  #key(event) {
    if (this.picker) return this.picker.handleKey(event);
    if (!this.keymap || event.target.closest?.("input, select, textarea")) return;
    const action = actionFor(this.keymap, event);
    if (!action) return;
    event.preventDefault();
    event.stopPropagation();
    const actions = {
      label: () => this.#label(action.label, action.note),
      move: () => this.grid.move(action.delta),
      rows: () => (this.viewer.open ? this.grid.move(action.rows) : this.grid.moveRows(action.rows)),
      jump: () => this.#jump(action.to),
      undo: () => this.#undo(),
      toggle: () => (this.viewer.open ? this.viewer.hide() : this.#showViewer()),
      close: () => (this.help.hidden ? this.viewer.hide() : this.#toggleHelp()),
      help: () => this.#toggleHelp(),
    };
    actions[action.type]?.();
  }

  async #label(label, note = null) {
    const item = this.grid.selected;
    if (!item || this.picker) return;
    const spec = this.spec.labels.find((l) => l.name === label);
    let reason = null;
    if (spec.needs_reason) {
      this.picker = new ReasonPicker(this.root, { title: spec.title, reasons: this.spec.reasons, color: spec.color });
      reason = await this.picker.result;
      this.picker = null;
      this.root.focus({ preventScroll: true });
      if (!reason) return this.#say("cancelled: no reason given");
    }
    const shown = this.session.decide(item, label, reason, note, {
      onSaved: (saved, summary) => this.#applied(saved, summary),
      onFailed: (before, error) => {
        this.grid.update(before);
        this.#error(error);
      },
    });
    this.grid.update(shown);
    this.#say(`${spec.title}${reason ? ` · ${this.spec.reasons[reason] || reason}` : ""}${note ? ` · ${note}` : ""}`);
    const next = this.session.nextPending(this.grid.index);
    this.grid.select(next >= 0 ? next : this.grid.index + 1);
  }

  #applied(item, summary) {
    this.grid.update(item);
    this.#panels();
    if (this.viewer.open && this.grid.selected?.id === item.id) this.#showViewer();
    if (!this.session.inFlight || summary.pending === 0) this.#say(summary.pending ? "" : "all decided ✓");
    if (summary.placement?.pending) this.#followPlacement();
  }

  // Files are placed a moment after the last decision: follow that until it is done, so
  // "placing files…" never outlives the work it describes (the 5 s poll alone could leave it up).
  async #followPlacement() {
    if (this.placing) return;
    this.placing = true;
    try {
      for (let tries = 0; tries < 120 && this.session.summary?.placement?.pending; tries += 1) {
        await new Promise((done) => setTimeout(done, 1000));
        if (this.session.inFlight) continue;
        await this.session.refreshSummary();
        this.#panels();
      }
    } catch (error) {
      this.#say(error.message);
    } finally {
      this.placing = false;
    }
  }

  async #undo() {
    try {
      const result = await this.session.undo();
      if (!result) return this.#say("nothing to undo");
      if (result.item) {
        this.grid.update(result.item);
        this.grid.select(this.grid.indexOf(result.id));
      }
      this.#panels();
      this.#say(`undone: ${result.item?.file || result.id.slice(0, 12)}`);
    } catch (error) {
      this.#error(error);
    }
  }

  #jump(to) {
    if (to === "first") return this.grid.select(0);
    if (to === "last") return this.grid.select(this.session.items.length - 1);
    const next = this.session.nextPending(this.grid.index);
    return next >= 0 ? this.grid.select(next) : this.#say("nothing pending");
  }

  #selected(item) {
    if (this.viewer.open) this.#showViewer();
    if (this.spec && this.session.summary?.coverage) {
      renderCoverage(this.coverage, this.session.summary.coverage, item, this.#coverageActions());
    }
  }

  #showViewer() {
    const index = this.grid.index;
    const urls = {
      image: (dataset, id, version) => this.client.imageUrl(this.session.project, dataset, version, id),
      thumb: (dataset, id, version) => this.#thumb(dataset, id, version),
    };
    this.viewer.show(this.grid.selected, urls, {
      dataset: this.spec.dataset_stage,
      version: this.session.version,
      labels: this.spec.labels,
      notes: this.spec.notes,
      coverage: this.session.summary?.coverage,
      preload: [this.session.items[index + 1], this.session.items[index - 1]].filter(Boolean),
      fix: this.spec.dataset_stage === "enriched" ? {
        url: (item) => this.client.fixUrl(this.session.project, this.session.version, item.id, item.fix?.mtime),
        upload: (item, file) => this.#uploadFix(item, file),
      } : null,
    });
  }

  async #uploadFix(item, file) {
    this.#say(`sending ${file.name}…`);
    try {
      const result = await this.client.uploadFix(this.session.project, this.session.version, item.id, file);
      this.message.hidden = true;
      const updated = { ...item, fix: { count: 1, file: result.fix.file.split("/").pop(), mtime: Date.now() } };
      this.session.items[this.session.items.findIndex((other) => other.id === item.id)] = updated;
      this.grid.update(updated);
      if (this.viewer.open && this.grid.selected?.id === item.id) this.#showViewer();
      this.#say(`corrected target saved${result.note ? ` · ${result.note}` : ""}`);
    } catch (error) {
      this.#error(error);
    }
  }

  #toggleHelp() {
    this.help.hidden = !this.help.hidden;
    if (!this.help.hidden && this.spec) {
      clear(this.help, h("b", {}, "Keys"), h("table", {},
        ...describeKeys(this.spec).map(([keys, what]) => h("tr", {}, h("td", {}, h("kbd", {}, keys)), h("td", {}, what)))));
    }
  }

  // Messages ---------------------------------------------------------------------------------
  #say(text) {
    this.status.textContent = text;
  }

  #error(error) {
    this.message.hidden = false;
    this.message.className = "fw-message fw-error";
    this.message.textContent = error.message || String(error);
  }

  #empty(text) {
    this.message.hidden = false;
    this.message.className = "fw-message";
    this.message.textContent = text;
    this.grid.render([], () => "", []);
    clear(this.progress);
    this.root.dataset.ready = "1";
  }
}

/** A dataset's line in the picker (datasets and summaries both carry these fields). */
// Short enough for the sidebar's default width: "enriched/v1 · 5 of 10 left"; the review stage is
// named only when it differs from the dataset's ("reruns/v1 (rerun) · ...").
function datasetTitle({ dataset, stage, pending, total }) {
  const named = String(dataset).startsWith(`${stage}/`) ? dataset : `${dataset} (${stage})`;
  return `${named} · ${pending ? `${pending} of ${total} left` : `all ${total} decided`}`;
}

function fill(select, options) {
  const value = select.value;
  clear(select, ...options.map(([key, text]) => h("option", { value: key }, text)));
  if (options.some(([key]) => key === value)) select.value = value;
}

function remembered() {
  try {
    return JSON.parse(localStorage.getItem(STORAGE_KEY) || "{}");
  } catch {
    return {};
  }
}

function remember(place) {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(place));
  } catch {
    // private windows may refuse storage; the page then simply opens the first dataset
  }
}
