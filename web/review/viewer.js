// The large view: the selected image big, beside its source for enriched images, with the
// prompt, the identity score, the verdict and (for the pristine pick) whether it fills a gap.

import { clear, h } from "./elements.js";
import { fixPicker } from "./fix.js";

export class Viewer {
  constructor() {
    this.images = h("div", { class: "fw-viewer-images" });
    this.info = h("div", { class: "fw-viewer-info" });
    this.el = h("div", { class: "fw-viewer", hidden: true }, this.images, this.info);
  }

  get open() {
    return !this.el.hidden;
  }

  hide() {
    this.el.hidden = true;
  }

  /**
   * Show `item`. `urls` has image(dataset, id, version) and thumb(dataset, id, version);
   * `context` has the stage spec, dataset name, version, coverage and neighbours to preload.
   */
  show(item, urls, context) {
    this.el.hidden = false;
    if (!item) {
      clear(this.images, h("div", { class: "fw-empty" }, "nothing to show"));
      clear(this.info);
      return;
    }
    const figures = [];
    if (item.source) {
      figures.push(figure("source", urls.image(item.source.dataset, item.source.id, item.source.version),
        urls.thumb(item.source.dataset, item.source.id, item.source.version)));
    }
    if (item.corrects) {
      figures.push(figure("failed edit", urls.image(item.corrects.dataset, item.corrects.id, item.corrects.version),
        urls.thumb(item.corrects.dataset, item.corrects.id, item.corrects.version)));
    }
    const caption = item.corrects ? "re-run" : item.source ? "edit" : item.file;
    figures.push(figure(caption, urls.image(context.dataset, item.id, context.version),
      urls.thumb(context.dataset, item.id, context.version)));
    const correcting = context.fix && item.label === "needs_correction";
    if (correcting && item.fix) figures.push(figure("corrected target", context.fix.url(item), null));
    clear(this.images, ...figures);
    this.images.classList.toggle("fw-pair", figures.length > 1);
    clear(this.info, ...details(item, context), correcting ? fixPicker(item, context.fix) : null);
    for (const next of context.preload || []) {
      new Image().src = urls.image(context.dataset, next.id, context.version);
    }
  }
}

function figure(caption, src, placeholder) {
  const style = placeholder ? { backgroundImage: `url("${placeholder}")` } : null;
  const img = h("img", { src, alt: caption, decoding: "async", style });
  return h("figure", { class: "fw-figure" }, img, h("figcaption", {}, caption));
}

function details(item, context) {
  const spec = context.labels.find((label) => label.name === item.label);
  const verdict = spec
    ? h("div", { class: "fw-verdict", style: { background: spec.color } }, spec.title,
      item.reason_text ? h("span", { class: "fw-verdict-reason" }, ` · ${item.reason_text}`) : null,
      item.note ? h("span", { class: "fw-verdict-note" }, ` · ${item.note}`) : null)
    : h("div", { class: "fw-verdict fw-pending" }, "pending");
  return [
    verdict,
    decidedBy(item),
    item.cell ? h("div", { class: "fw-cell" }, h("b", {}, "cell "), item.cell,
      item.try != null ? ` · try ${item.try + 1}` : "", item.pose ? ` · pose ${item.pose}` : "") : null,
    item.prompt ? h("div", { class: "fw-prompt" }, h("b", {}, "prompt "), item.prompt) : null,
    identityLine(item.identity),
    tagsLine(item, context.coverage),
    h("div", { class: "fw-file" }, item.file, item.w ? ` · ${item.w}×${item.h}` : "",
      item.seed != null ? ` · seed ${item.seed}` : ""),
    keyHints(context),
  ];
}

// Who gave the verdict: an --auto-review decision is no human's, and the page says so plainly.
function decidedBy(item) {
  if (!item.label || !item.reviewer) return null;
  if (item.auto) return h("div", { class: "fw-decider fw-auto" }, "decided by auto-review (demo only, not a human)");
  const when = item.at ? ` · ${String(item.at).replace("T", " ").slice(0, 16)}` : "";
  return h("div", { class: "fw-decider" }, `decided by ${item.reviewer}${when}`);
}

function identityLine(identity) {
  if (!identity) return null;
  const parts = [];
  if (identity.similarity != null) parts.push(`similarity ${Number(identity.similarity).toFixed(2)}`);
  if (identity.distance != null) parts.push(`distance ${Number(identity.distance).toFixed(2)}`);
  const match = identity.match == null ? "" : identity.match ? "match" : "no match";
  return h("div", { class: `fw-identity ${identity.match === false ? "fw-bad" : "fw-good"}` },
    h("b", {}, "identity "), [match, ...parts].filter(Boolean).join(" · "),
    identity.reason ? h("div", { class: "fw-identity-reason" }, identity.reason) : null);
}

function tagsLine(item, coverage) {
  if (!item.angle && !item.expression) return null;
  const tags = `${item.angle || "?"} · ${item.expression || "?"}`;
  if (!coverage) return h("div", { class: "fw-tags" }, tags);
  const a = coverage.angles.indexOf(item.angle);
  const e = coverage.expressions.indexOf(item.expression);
  if (a < 0 || e < 0) return h("div", { class: "fw-tags" }, tags, " (not a model-card cell)");
  const picked = coverage.picked[a][e];
  const hint = picked ? `${picked} already picked for this cell` : "fills a gap: no pick for this cell yet";
  return h("div", { class: `fw-tags ${picked ? "" : "fw-gap"}` }, tags, " — ", hint);
}

function keyHints(context) {
  const labels = context.labels.map((label) => `${label.keys.join("/")} ${label.title.toLowerCase()}`);
  const extra = context.notes?.length ? ["f pristine + fills gap"] : [];
  return h("div", { class: "fw-keys" }, [...labels, ...extra, "←→ move", "z undo", "Esc grid"].join(" · "));
}
