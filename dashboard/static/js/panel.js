// The side panel: a pod's followed logs, or any object as YAML (kept current by the watches).

import { ApiError, lines, request, stream } from "./api.js";
import { h } from "./dom.js";
import { RESOURCES, resourcePath } from "./resources.js";
import { toYaml } from "./yaml.js";

const MAX_LOG_LINES = 5000;
let current = null; // {kind: "logs"|"yaml", abort, …}

const el = (id) => document.getElementById(id);

export function closePanel() {
  if (current?.abort) current.abort.abort();
  current = null;
  el("panel").hidden = true;
  el("panel-body").textContent = "";
}

/** Open the panel for a route: ["logs", ns, pod, container?] or ["yaml", resource, ns, name]. */
export function openPanel(state, parts) {
  closePanel();
  el("panel").hidden = false;
  if (parts[0] === "logs") openLogs(state, parts[1], parts[2], parts[3] || "");
  else openYaml(state, parts[1], parts[2], parts[3]);
}

/** The collections changed: a YAML view of an object they hold shows its new version. */
export function refreshPanel(state, dirty) {
  if (current?.kind === "yaml" && dirty.has(current.resource)) showYaml(state);
  if (current?.kind === "logs" && dirty.has("pods")) logContainers(state);
}

// --- YAML ---------------------------------------------------------------------------------------

function withoutManagedFields(obj) {
  // `kubectl get -o yaml` leaves managedFields out unless asked (--show-managed-fields)
  const copy = structuredClone(obj);
  if (copy.metadata) delete copy.metadata.managedFields;
  return copy;
}

function openYaml(state, resource, namespace, name) {
  if (!RESOURCES[resource]) {
    el("panel-title").textContent = `unknown resource ${resource}`;
    return;
  }
  current = { kind: "yaml", resource, namespace, name, shown: "", abort: new AbortController() };
  el("panel-title").textContent = `${RESOURCES[resource].kind} ${namespace ? `${namespace}/` : ""}${name}`;
  el("panel-tools").replaceChildren();
  el("panel-body").className = "yaml";
  showYaml(state);
}

async function showYaml(state) {
  const view = current;
  const key = view.namespace ? `${view.namespace}/${view.name}` : view.name;
  let obj = state.collections[view.resource]?.get(key);
  if (!obj) {
    // not among the watched objects (another namespace is selected): read it once
    if (view.fetched) return;
    view.fetched = true;
    try {
      obj = await request("GET", resourcePath(view.resource, view.namespace, view.name), { signal: view.abort.signal });
    } catch (e) {
      if (e.name !== "AbortError" && current === view) el("panel-body").textContent = `Error from server: ${e.message}`;
      return;
    }
  }
  if (current !== view) return;
  const rv = obj.metadata?.resourceVersion;
  if (rv && rv === view.shown) return;
  view.shown = rv;
  el("panel-body").textContent = toYaml(withoutManagedFields(obj));
}

// --- logs ---------------------------------------------------------------------------------------

function containersOf(pod) {
  const spec = pod?.spec || {};
  return [...(spec.initContainers || []), ...(spec.containers || []), ...(spec.ephemeralContainers || [])].map((c) => c.name);
}

function logContainers(state) {
  const view = current;
  const pod = state.collections.pods?.get(`${view.namespace}/${view.pod}`);
  const names = containersOf(pod);
  const sig = names.join("|");
  if (!names.length || view.containers === sig) return;
  view.containers = sig;
  const select = h(
    "select",
    { "aria-label": "container", id: "log-container" },
    names.map((n) => h("option", { value: n }, n)),
  );
  select.value = view.container || pod.spec.containers?.[0]?.name || names[0];
  select.addEventListener("change", () => {
    location.hash = `#/${["logs", view.namespace, view.pod, select.value].map(encodeURIComponent).join("/")}`;
  });
  el("panel-tools").replaceChildren(select);
}

function openLogs(state, namespace, pod, container) {
  current = { kind: "logs", namespace, pod, container, containers: "", abort: new AbortController() };
  el("panel-title").textContent = `Logs of pod ${namespace}/${pod}${container ? ` (${container})` : ""}`;
  el("panel-tools").replaceChildren();
  el("panel-body").className = "logs";
  logContainers(state);
  follow(current);
}

function note(view, text) {
  if (current !== view) return;
  const body = el("panel-body");
  body.append(h("span", { class: "note" }, `${text}\n`));
}

/** Follow the log until the panel closes; wait and retry while the container has not started. */
async function follow(view) {
  const body = el("panel-body");
  const query = new URLSearchParams({ follow: "true", tailLines: "1000" });
  if (view.container) query.set("container", view.container);
  const path = `${resourcePath("pods", view.namespace, view.pod)}/log?${query}`;
  let wait = 1000;
  while (current === view) {
    let got = false;
    try {
      const response = await stream(path, view.abort.signal);
      for await (const line of lines(response)) {
        if (current !== view) return;
        got = true;
        body.append(`${line}\n`);
        while (body.childNodes.length > MAX_LOG_LINES) body.firstChild.remove();
        body.scrollTop = body.scrollHeight;
      }
      note(view, "— the log stream ended —");
      return;
    } catch (e) {
      if (e.name === "AbortError" || current !== view) return;
      const message = e instanceof ApiError ? e.message : String(e);
      note(view, `${message} (retrying in ${Math.round(wait / 1000)}s)`);
      if (e instanceof ApiError && e.code === 404) return; // the pod is gone
    }
    await new Promise((resolve) => setTimeout(resolve, wait));
    wait = got ? 1000 : Math.min(wait * 2, 10000);
  }
}
