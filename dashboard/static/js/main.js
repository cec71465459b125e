// The dashboard page: lists and watches the cluster's objects through the dashboard's API proxy,
// shows them as kubectl would, and acts on them (scale, restart, delete) with the user's rights.

import { ApiError, Collection, WatchHub, request, setToken, token } from "./api.js";
import { Samples } from "./charts.js";
import { parseQuantity } from "./kube.js";
import { RESOURCES, resourcePath } from "./resources.js";
import { $, render } from "./views.js";
import { closePanel, openPanel, refreshPanel } from "./panel.js";

export const state = {
  namespace: new URLSearchParams(location.search).get("namespace") || "",
  collections: {},
  metrics: { available: false, nodes: new Samples(), pods: new Samples() },
  dirty: new Set(),
};

const hub = new WatchHub(changed, connection);

function changed(c) {
  state.dirty.add(c.name);
  schedule();
}

let frame = 0;
let marked = false;
function schedule() {
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    const dirty = state.dirty;
    state.dirty = new Set();
    const start = performance.now();
    render(state, dirty);
    refreshPanel(state, dirty);
    if (!marked) {
      performance.measure("dashboard:render", { start }); // what loading the overview costs the page itself
      if (document.body.dataset.synced === "true") {
        marked = true;
        performance.mark("dashboard:synced"); // every list shown: when the overview is complete
      }
    }
  });
}

function connection(kind, message) {
  const el = $("#connection");
  const text = { live: "live", connecting: "connecting…", error: `reconnecting: ${message}` };
  el.className = `connection ${{ live: "ok", connecting: "wait", error: "bad" }[kind]}`;
  el.textContent = text[kind];
  el.title = kind === "live" ? "watching the API" : message || "";
}

function startWatches() {
  const collections = {};
  for (const name of Object.keys(RESOURCES)) {
    collections[name] = new Collection(name, resourcePath(name, state.namespace));
  }
  state.collections = collections;
  state.dirty = new Set(Object.keys(RESOURCES));
  connection("connecting");
  hub.start(Object.values(collections));
  schedule();
}

// --- feedback ---------------------------------------------------------------------------------

/** A message in the corner: what an action did, or the API's reason it did not. */
export function toast(text, tone = "ok") {
  const el = document.createElement("div");
  el.className = `toast ${tone}`;
  el.setAttribute("role", tone === "bad" ? "alert" : "status");
  el.textContent = text;
  $("#toasts").append(el);
  setTimeout(() => el.remove(), tone === "bad" ? 15000 : 5000);
}

/** Ask in the page's dialog; the typed value (or "" without input), or null when cancelled. */
function ask(text, value) {
  const dialog = $("#ask");
  const input = $("#ask-input");
  $("#ask-text").textContent = text;
  input.hidden = value === undefined;
  input.value = value ?? "";
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => resolve(dialog.returnValue === "ok" ? input.value : null),
      { once: true },
    );
    dialog.returnValue = "";
    dialog.showModal();
    if (!input.hidden) input.select();
  });
}

async function act(what, call) {
  try {
    await call();
    toast(what);
  } catch (e) {
    toast(e instanceof ApiError ? `Error from server (${e.reason || e.code}): ${e.message}` : String(e), "bad");
  }
}

// --- actions ----------------------------------------------------------------------------------

const GROUP_SUFFIX = { deployments: ".apps", statefulsets: ".apps", daemonsets: ".apps", replicasets: ".apps" };

export async function scale(resource, obj) {
  const { namespace, name } = obj.metadata;
  const singular = resource.replace(/s$/, "");
  const answer = await ask(`Scale ${singular} ${namespace}/${name} to how many replicas?`, obj.spec?.replicas ?? 1);
  if (answer === null) return;
  const replicas = answer.trim() === "" ? Number.NaN : Number(answer);
  await act(`${singular}${GROUP_SUFFIX[resource] || ""}/${name} scaled`, () =>
    request("PATCH", `${resourcePath(resource, namespace, name)}/scale`, {
      body: { spec: { replicas: Number.isInteger(replicas) ? replicas : answer } },
      contentType: "application/merge-patch+json",
    }),
  );
}

export async function restart(resource, obj) {
  const { namespace, name } = obj.metadata;
  const singular = resource.replace(/s$/, "");
  if (resource === "deployments" && obj.spec?.paused) {
    toast(`error: deployments "${name}" is paused; can't restart paused deployment (run rollout resume first)`, "bad");
    return;
  }
  if ((await ask(`Restart the rollout of ${singular} ${namespace}/${name}?`)) === null) return;
  // what `kubectl rollout restart` patches: a changed template rolls every pod
  const restartedAt = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  await act(`${singular}${GROUP_SUFFIX[resource] || ""}/${name} restarted`, () =>
    request("PATCH", resourcePath(resource, namespace, name), {
      body: { spec: { template: { metadata: { annotations: { "kubectl.kubernetes.io/restartedAt": restartedAt } } } } },
      contentType: "application/strategic-merge-patch+json",
    }),
  );
}

export async function deletePod(pod) {
  const { namespace, name } = pod.metadata;
  if ((await ask(`Delete pod ${namespace}/${name}?`)) === null) return;
  await act(`pod "${name}" deleted`, () => request("DELETE", resourcePath("pods", namespace, name)));
}

// --- metrics (metrics.k8s.io has no watch: it is sampled) -------------------------------------

const METRICS = "/apis/metrics.k8s.io/v1beta1";

async function metricsAvailable() {
  try {
    await request("GET", METRICS);
    return true;
  } catch {
    return false;
  }
}

async function sampleMetrics() {
  const ns = state.namespace ? `/namespaces/${encodeURIComponent(state.namespace)}` : "";
  const [nodes, pods] = await Promise.all([
    request("GET", `${METRICS}/nodes`),
    request("GET", `${METRICS}${ns}/pods`),
  ]);
  const nodeKeys = new Set();
  for (const m of nodes.items || []) {
    nodeKeys.add(m.metadata.name);
    state.metrics.nodes.add(m.metadata.name, parseQuantity(m.usage?.cpu), parseQuantity(m.usage?.memory));
  }
  const podKeys = new Set();
  for (const m of pods.items || []) {
    const key = `${m.metadata.namespace}/${m.metadata.name}`;
    podKeys.add(key);
    let cpu = 0;
    let memory = 0;
    for (const c of m.containers || []) {
      cpu += parseQuantity(c.usage?.cpu) || 0;
      memory += parseQuantity(c.usage?.memory) || 0;
    }
    state.metrics.pods.add(key, cpu, memory);
  }
  state.metrics.nodes.keep(nodeKeys);
  state.metrics.pods.keep(podKeys);
}

async function metricsLoop() {
  for (;;) {
    const available = await metricsAvailable();
    if (available !== state.metrics.available) {
      state.metrics.available = available;
      state.dirty.add("nodes").add("pods");
      schedule();
    }
    if (available) {
      try {
        await sampleMetrics();
        state.dirty.add("nodes").add("pods");
        schedule();
      } catch {
        // a missed sample leaves a gap in the chart; the next one comes in 10 s
      }
    }
    await new Promise((resolve) => setTimeout(resolve, available ? 10000 : 30000));
  }
}

// --- wiring -----------------------------------------------------------------------------------

function showSignedIn() {
  const signedIn = Boolean(token());
  $("#signout").hidden = !signedIn;
  $("#token").hidden = signedIn;
  $("#signin-button").hidden = signedIn;
}

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "logs" || parts[0] === "yaml") openPanel(state, parts);
  else closePanel();
}

function init() {
  const select = $("#namespace");
  select.value = state.namespace;
  select.addEventListener("change", () => {
    state.namespace = select.value;
    const url = new URL(location.href);
    if (state.namespace) url.searchParams.set("namespace", state.namespace);
    else url.searchParams.delete("namespace");
    history.replaceState(null, "", url);
    startWatches();
  });
  $("#signin").addEventListener("submit", (e) => {
    e.preventDefault();
    setToken($("#token").value.trim());
    $("#token").value = "";
    showSignedIn();
    startWatches();
  });
  $("#signout").addEventListener("click", () => {
    setToken("");
    showSignedIn();
    startWatches();
  });
  document.addEventListener("click", (e) => {
    const button = e.target.closest("button[data-action]");
    if (!button) return;
    const { action, resource, key } = button.dataset;
    const obj = state.collections[resource]?.get(key);
    if (!obj) return;
    if (action === "scale") scale(resource, obj);
    else if (action === "restart") restart(resource, obj);
    else if (action === "delete") deletePod(obj);
  });
  window.addEventListener("hashchange", route);
  setInterval(() => {
    // ages and "restarted … ago" move on with the clock, not with the objects
    for (const name of ["nodes", "pods", "deployments", "replicasets", "statefulsets", "daemonsets", "jobs", "cronjobs"]) {
      state.dirty.add(name);
    }
    schedule();
  }, 10000);
  showSignedIn();
  startWatches();
  route();
  metricsLoop();
}

init();
