// What the page knows about one dataset under review, and the decisions in flight.
// Decisions show at once and are sent in order; a failed send puts the tile back and reports
// the error, so what the page shows never claims a decision the server did not store.

export class ReviewSession {
  constructor(client) {
    this.client = client;
    this.items = [];
    this.summary = null;
    this.chain = Promise.resolve();
    this.inFlight = 0;
    this.best = 0;
  }

  /** Start loading a dataset the page will probably open, while it still asks what exists. */
  prefetch(project, stage, version, filter) {
    const key = [project, stage, version, filter].join("|");
    const promise = this.client.items(project, stage, version, filter);
    promise.catch(() => null);
    this.early = { key, promise };
  }

  async load(project, stage, version, filter) {
    Object.assign(this, { project, stage, version, filter });
    const key = [project, stage, version, filter].join("|");
    const early = this.early?.key === key ? this.early.promise : null;
    this.early = null;
    const data = await ((!this.best && early) || this.client.items(project, stage, version, filter, this.best));
    this.items = data.items;
    this.summary = data.summary;
    return this.items;
  }

  get scope() {
    return { stage: this.stage, version: this.version };
  }

  /** Show the verdict now; `onSaved(item, summary)` / `onFailed(item, error)` report the outcome. */
  decide(item, label, reason, note, { onSaved, onFailed }) {
    const before = { ...item };
    const shown = { ...item, label, reason, reason_text: reason, note, auto: false, reviewer: null, at: null };
    this.#replace(shown);
    this.inFlight += 1;
    this.chain = this.chain
      .then(() => this.client.decide(this.project, { ...this.scope, id: item.id, label, reason, note }))
      .then((data) => {
        const { reason_text, seq, reviewer, at } = data.decision;
        const saved = { ...shown, reason_text, seq, reviewer, at };
        this.#replace(saved);
        this.summary = data.summary;
        onSaved(saved, data.summary);
      })
      .catch((error) => {
        this.#replace(before);
        onFailed(before, error);
      })
      .finally(() => (this.inFlight -= 1));
    return shown;
  }

  /** Undo the newest standing decision of this dataset; resolves with the changed item or null. */
  async undo() {
    await this.chain;
    const data = await this.client.undo(this.project, this.scope);
    this.summary = data.summary;
    if (!data.undone) return null;
    const item = this.items.find((candidate) => candidate.id === data.undone.image_id);
    if (!item) return { id: data.undone.image_id, item: null };
    const current = data.current;
    const restored = {
      ...item,
      label: current?.label ?? null,
      reason: current?.reason ?? null,
      reason_text: current?.reason_text ?? null,
      note: current?.note ?? null,
    };
    this.#replace(restored);
    return { id: restored.id, item: restored };
  }

  async refreshSummary() {
    this.summary = await this.client.summary(this.project, this.stage, this.version);
    return this.summary;
  }

  nextPending(from) {
    const count = this.items.length;
    for (let step = 1; step <= count; step += 1) {
      const index = (from + step) % count;
      if (!this.items[index].label) return index;
    }
    return -1;
  }

  #replace(item) {
    const index = this.items.findIndex((candidate) => candidate.id === item.id);
    if (index >= 0) this.items[index] = item;
  }
}
