// HTTP client for the review API (core/review/api.py). The same calls work inside ComfyUI
// (base /api/flenwheel/review) and in `flenwheel review serve` (base /flenwheel/review).

export class ReviewClient {
  constructor(base) {
    this.base = base.replace(/\/$/, "");
  }

  async get(path, params = {}) {
    const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v != null));
    const text = query.toString();
    return this.#send(`${this.base}${path}${text ? `?${text}` : ""}`, { method: "GET" });
  }

  async post(path, body) {
    return this.#send(`${this.base}${path}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  async #send(url, options) {
    let response;
    try {
      response = await fetch(url, { ...options, cache: "no-store" });
    } catch (error) {
      throw new Error(`the review server cannot be reached (${error.message}); is it still running?`);
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(data.error || `${response.status} ${response.statusText}`);
    }
    return data;
  }

  projects() {
    return this.get("/projects").then((d) => d.projects);
  }

  stages() {
    return this.get("/stages").then((d) => d.stages);
  }

  datasets(project) {
    return this.get(`/${project}/datasets`);
  }

  /** `best` > 0 asks the pristine review to mark its N best gap-fillers as suggested (nothing is decided). */
  items(project, stage, version, filter = "all", best = 0) {
    return this.get(`/${project}/items`, best ? { stage, version, filter, best } : { stage, version, filter });
  }

  summary(project, stage, version) {
    return this.get(`/${project}/summary`, { stage, version });
  }

  decide(project, body) {
    return this.post(`/${project}/decide`, body);
  }

  undo(project, body) {
    return this.post(`/${project}/undo`, body);
  }

  /** Send a picked file as the corrected target of a needs-correction edit (the body is the file). */
  uploadFix(project, version, id, file) {
    const query = new URLSearchParams({ version, id, name: file.name });
    return this.#send(`${this.base}/${project}/fix?${query}`, {
      method: "POST",
      headers: { "Content-Type": file.type || "application/octet-stream" },
      body: file,
    });
  }

  fixUrl(project, version, id, stamp) {
    return `${this.base}/${project}/fix/${version}/${id}?t=${stamp}`;
  }

  thumbUrl(project, dataset, version, id, size = 256) {
    return `${this.base}/${project}/thumb/${dataset}/${version}/${id}?size=${size}`;
  }

  imageUrl(project, dataset, version, id) {
    return `${this.base}/${project}/image/${dataset}/${version}/${id}`;
  }
}
