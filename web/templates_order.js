// ComfyUI entry: this pack's templates in flywheel order in the template browser.
// ComfyUI lists a pack's workflows/ in file-system order (an unsorted glob) and frontend 1.27 shows
// them in the order it receives them. The file names start with their step number ("01 Curate
// sources"), so sorting this pack's list by name gives the flywheel order on every file system.

import { api } from "../../scripts/api.js";

// The pack's folder under custom_nodes/, which names its template list: /extensions/<folder>/...
const PACK = decodeURIComponent(new URL(import.meta.url).pathname.split("/").slice(-2, -1)[0]);
const byStep = (a, b) => a.localeCompare(b, "en", { numeric: true });

if (typeof api.getWorkflowTemplates === "function") {
  const listTemplates = api.getWorkflowTemplates.bind(api);
  api.getWorkflowTemplates = async () => {
    const lists = await listTemplates();
    if (Array.isArray(lists?.[PACK])) lists[PACK] = [...lists[PACK]].sort(byStep);
    return lists;
  };
}
