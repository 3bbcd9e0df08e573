// ComfyUI entry: the pack's sidebar tabs, Review then Training, registered in one go.
// Each tab used to register from its own extension; the frontend imports extension files in
// parallel, so the two tabs swapped places between page loads.

import { app } from "../../scripts/app.js";
import { reviewTab } from "./review_tab.js";
import { trainingTab } from "./training_tab.js";

app.registerExtension({
  name: "flenwheel.sidebar",
  async setup() {
    for (const make of [reviewTab, trainingTab]) app.extensionManager.registerSidebarTab(make());
  },
});
