// The review page as a sidebar tab, opened on what a ReviewGate node waits for (sidebar_tabs.js
// registers it). Everything else lives in ./review/ (shared with the standalone page of `flenwheel review serve`).

import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { mountReview } from "./review/app.js";

const TAB_ID = "flenwheel-review";
const here = new URL("./review/", import.meta.url);

function addStyles() {
  if (document.getElementById("fw-review-css")) return;
  document.head.append(Object.assign(document.createElement("link"), {
    id: "fw-review-css",
    rel: "stylesheet",
    href: new URL("review.css", here).href,
  }));
}

function toast(summary, detail) {
  app.extensionManager?.toast?.add?.({ severity: "info", summary, detail, life: 6000 });
}

// Open the review tab when a gate starts waiting (frontends without the command API just toast).
function openTab() {
  const manager = app.extensionManager;
  if (manager?.sidebarTab?.activeSidebarTabId === TAB_ID) return;
  manager?.command?.execute?.(`Workspace.ToggleSidebarTab.${TAB_ID}`);
}

/** The Review tab (registered by sidebar_tabs.js, so the pack's tabs keep one order). */
export function reviewTab() {
  addStyles();
  let view = null;
  let waiting = null;
  let announced = "";
  api.addEventListener("flenwheel.review.waiting", ({ detail }) => {
    waiting = detail;
    const key = `${detail.project}:${detail.stage}:${detail.version}`;
    if (view) view.focusOn(detail);
    if (announced !== key) {
      announced = key;
      openTab();
      toast("FLENwheel Review Gate is waiting",
        `${detail.pending} of ${detail.total} ${detail.stage} images need a decision: open the Review tab.`);
    }
  });
  api.addEventListener("flenwheel.review.done", () => {
    announced = "";
    waiting = null;
  });
  return {
    id: TAB_ID,
    icon: "pi pi-images",
    title: "Review",
    tooltip: "FLENwheel review: label enriched and synthetic images",
    type: "custom",
    render: (element) => {
      view?.destroy();
      const popout = new URL("index.html", here);
      view = mountReview(element, {
        apiBase: api.apiURL("/flenwheel/review"),
        popoutUrl: popout.href,
        initial: waiting || {},
      });
    },
    destroy: () => {
      view?.destroy();
      view = null;
    },
  };
}
