// The overview's tables, rendered from the watched collections.

import { sparkline } from "./charts.js";
import { KeyedRows, h, html } from "./dom.js";
import * as k from "./kube.js";
import { RESOURCES, WORKLOADS, objectKey } from "./resources.js";

export const $ = (selector) => document.querySelector(selector);

const MAX_EVENTS = 200;
const tables = new Map();

function section(id) {
  let t = tables.get(id);
  if (!t) {
    const el = document.getElementById(id);
    t = { el, rows: new KeyedRows(el.querySelector("tbody")), head: "" };
    tables.set(id, t);
  }
  return t;
}

function setHead(t, columns) {
  const sig = columns.join("|");
  if (t.head === sig) return;
  t.head = sig;
  t.el.querySelector("thead").replaceChildren(h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c))));
}

function setError(t, errors) {
  const p = t.el.querySelector(".error");
  const text = errors.filter(Boolean).join("; ");
  p.hidden = !text;
  p.textContent = text;
}

function byNamespaceName(a, b) {
  const an = a.metadata.namespace || "";
  const bn = b.metadata.namespace || "";
  return an < bn ? -1 : an > bn ? 1 : a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}

function yamlLink(resource, obj, text, cls = "name") {
  const m = obj.metadata;
  const parts = ["yaml", resource, m.namespace || "", m.name].map(encodeURIComponent);
  return html`<a href="#/${parts.join("/")}" class="${cls}">${text ?? m.name}</a>`;
}

function badge(text, tone) {
  return html`<span class="badge ${tone}">${text}</span>`;
}

function usageCells(samples, key, capacity) {
  const s = samples.get(key);
  if (!s || !s.cpu.length) return html`<td class="cpu">–</td><td class="memory">–</td>`;
  const cpu = s.cpu[s.cpu.length - 1];
  const mem = s.memory[s.memory.length - 1];
  return html`<td class="cpu">${sparkline(s.cpu, capacity?.cpu, "CPU")} ${k.formatCPU(cpu)}</td><td class="memory">${sparkline(s.memory, capacity?.memory, "memory")} ${k.formatMemory(mem)}</td>`;
}

function actionButton(action, resource, obj, text) {
  return html`<button type="button" class="${action}" data-action="${action}" data-resource="${resource}" data-key="${objectKey(obj)}">${text}</button>`;
}

// --- sections ---------------------------------------------------------------------------------

function renderNodes(state) {
  const t = section("nodes");
  const c = state.collections.nodes;
  const metrics = state.metrics.available;
  setHead(t, ["Name", "Status", "Conditions", "Roles", "Age", "Version", "Internal-IP", ...(metrics ? ["CPU", "Memory"] : [])]);
  setError(t, [c.error]);
  const now = Date.now();
  const items = c.values().sort(byNamespaceName);
  t.el.querySelector(".count").textContent = `(${items.length})`;
  t.rows.update(
    items,
    objectKey,
    (n) => `${n.metadata.resourceVersion}|${k.age(n, now)}|${metrics ? state.metrics.nodes.version : "-"}`,
    (n) => {
      const status = k.nodeStatus(n);
      const conditions = (n.status?.conditions || []).map(
        (cond) =>
          html`<span class="chip ${k.conditionHealthy(cond) ? "ok" : "bad"}" title="${cond.message || ""}">${cond.type}=${cond.status}</span>`,
      );
      const capacity = {
        cpu: k.parseQuantity(n.status?.allocatable?.cpu ?? n.status?.capacity?.cpu),
        memory: k.parseQuantity(n.status?.allocatable?.memory ?? n.status?.capacity?.memory),
      };
      return html`<tr>
        <td>${yamlLink("nodes", n)}</td>
        <td class="status">${badge(status, status.startsWith("Ready") ? "ok" : "bad")}</td>
        <td class="conditions">${conditions}</td>
        <td>${k.nodeRoles(n)}</td>
        <td class="age">${k.age(n, now)}</td>
        <td>${n.status?.nodeInfo?.kubeletVersion || ""}</td>
        <td class="ip">${k.nodeAddress(n, "InternalIP")}</td>
        ${metrics ? usageCells(state.metrics.nodes, n.metadata.name, capacity) : null}
      </tr>`;
    },
  );
}

function renderWorkloads(state) {
  const t = section("workloads");
  const all = state.namespace === "";
  setHead(t, ["Kind", ...(all ? ["Namespace"] : []), "Name", "Ready", "Status", "Age", "Actions"]);
  setError(t, WORKLOADS.map((r) => state.collections[r].error && `${r}: ${state.collections[r].error}`));
  const now = Date.now();
  const items = [];
  for (const resource of WORKLOADS) {
    for (const obj of state.collections[resource].values().sort(byNamespaceName)) items.push({ resource, obj });
  }
  t.el.querySelector(".count").textContent = `(${items.length})`;
  t.rows.update(
    items,
    ({ resource, obj }) => `${resource}/${objectKey(obj)}`,
    ({ resource, obj }) => `${obj.metadata.resourceVersion}|${k.workloadSummary(RESOURCES[resource].kind, obj, now).detail}|${k.age(obj, now)}|${all}`,
    ({ resource, obj }) => {
      const kind = RESOURCES[resource].kind;
      const s = k.workloadSummary(kind, obj, now);
      const actions = [];
      // a ReplicaSet that a Deployment owns is scaled through its Deployment
      const owned = (obj.metadata.ownerReferences || []).some((o) => o.controller);
      if (["deployments", "statefulsets", "replicasets"].includes(resource) && !owned) {
        actions.push(actionButton("scale", resource, obj, "Scale"));
      }
      if (["deployments", "statefulsets", "daemonsets"].includes(resource)) actions.push(actionButton("restart", resource, obj, "Restart"));
      return html`<tr data-kind="${kind}">
        <td class="kind">${kind}</td>
        ${all ? html`<td class="namespace">${obj.metadata.namespace}</td>` : null}
        <td>${yamlLink(resource, obj)}</td>
        <td class="ready">${badge(s.ready, s.tone)}</td>
        <td class="detail">${s.detail}</td>
        <td class="age">${k.age(obj, now)}</td>
        <td class="actions">${actions}</td>
      </tr>`;
    },
  );
}

function renderPods(state) {
  const t = section("pods");
  const c = state.collections.pods;
  const all = state.namespace === "";
  const metrics = state.metrics.available;
  setHead(t, [
    ...(all ? ["Namespace"] : []),
    "Name",
    "Ready",
    "Status",
    "Restarts",
    "Age",
    "IP",
    "Node",
    ...(metrics ? ["CPU", "Memory"] : []),
    "Actions",
  ]);
  setError(t, [c.error]);
  const now = Date.now();
  const items = c.values().sort(byNamespaceName);
  t.el.querySelector(".count").textContent = `(${items.length})`;
  t.rows.update(
    items,
    objectKey,
    (p) => {
      const s = k.podStatus(p);
      return `${p.metadata.resourceVersion}|${k.age(p, now)}|${k.restartsText(s, now)}|${all}|${metrics ? state.metrics.pods.version : "-"}`;
    },
    (p) => {
      const s = k.podStatus(p);
      const m = p.metadata;
      const logs = ["logs", m.namespace, m.name].map(encodeURIComponent).join("/");
      return html`<tr>
        ${all ? html`<td class="namespace">${m.namespace}</td>` : null}
        <td>${yamlLink("pods", p)}</td>
        <td class="ready">${s.ready}/${s.total}</td>
        <td class="status">${badge(s.reason, k.statusTone(s.reason))}</td>
        <td class="restarts">${k.restartsText(s, now)}</td>
        <td class="age">${k.age(p, now)}</td>
        <td class="ip">${k.podIP(p)}</td>
        <td class="node">${p.spec?.nodeName || "<none>"}</td>
        ${metrics ? usageCells(state.metrics.pods, objectKey(p)) : null}
        <td class="actions"><a href="#/${logs}" class="logs">Logs</a> ${yamlLink("pods", p, "YAML", "yaml")} ${actionButton("delete", "pods", p, "Delete")}</td>
      </tr>`;
    },
  );
}

function renderServices(state) {
  const t = section("services");
  const c = state.collections.services;
  const slices = state.collections.endpointslices;
  const all = state.namespace === "";
  setHead(t, [...(all ? ["Namespace"] : []), "Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Endpoints", "Age"]);
  setError(t, [c.error, slices.error && `endpointslices: ${slices.error}`]);
  const now = Date.now();
  const sliceList = slices.values();
  const items = c.values().sort(byNamespaceName);
  t.el.querySelector(".count").textContent = `(${items.length})`;
  t.rows.update(
    items,
    objectKey,
    (svc) => `${svc.metadata.resourceVersion}|${k.serviceEndpoints(svc, sliceList).join(",")}|${k.age(svc, now)}|${all}`,
    (svc) => {
      const endpoints = k.serviceEndpoints(svc, sliceList);
      return html`<tr>
        ${all ? html`<td class="namespace">${svc.metadata.namespace}</td>` : null}
        <td>${yamlLink("services", svc)}</td>
        <td>${k.serviceType(svc)}</td>
        <td>${k.clusterIP(svc)}</td>
        <td>${k.externalIP(svc)}</td>
        <td>${k.servicePorts(svc)}</td>
        <td class="endpoints">${endpoints.length ? endpoints.join(", ") : "<none>"}</td>
        <td class="age">${k.age(svc, now)}</td>
      </tr>`;
    },
  );
}

function renderEvents(state) {
  const t = section("events");
  const c = state.collections.events;
  const all = state.namespace === "";
  setHead(t, [...(all ? ["Namespace"] : []), "Last seen", "Type", "Reason", "Object", "Message"]);
  setError(t, [c.error]);
  const now = Date.now();
  const items = c
    .values()
    .sort((a, b) => k.eventTime(b) - k.eventTime(a))
    .slice(0, MAX_EVENTS);
  t.el.querySelector(".count").textContent = `(${c.items.size})`;
  t.rows.update(
    items,
    objectKey,
    (ev) => `${ev.metadata.resourceVersion}|${Math.floor((now - k.eventTime(ev)) / 10000)}|${all}`,
    (ev) => html`<tr>
      ${all ? html`<td class="namespace">${ev.metadata.namespace}</td>` : null}
      <td class="age">${k.eventTime(ev) ? k.humanDuration((now - k.eventTime(ev)) / 1000) : "<unknown>"}</td>
      <td>${badge(ev.type || "Normal", ev.type === "Warning" ? "bad" : "ok")}</td>
      <td>${ev.reason || ""}</td>
      <td>${k.eventObject(ev)}</td>
      <td class="message">${ev.message || ev.note || ""}</td>
    </tr>`,
  );
}

function renderNamespaces(state) {
  const select = $("#namespace");
  const names = state.collections.namespaces.values().map((n) => n.metadata.name).sort();
  if (state.namespace && !names.includes(state.namespace)) names.unshift(state.namespace);
  const want = ["", ...names].join("|");
  if (select.dataset.names === want) return;
  select.dataset.names = want;
  select.replaceChildren(h("option", { value: "" }, "All namespaces"), ...names.map((n) => h("option", { value: n }, n)));
  select.value = state.namespace;
}

const SECTIONS = [
  [["namespaces"], renderNamespaces],
  [["nodes"], renderNodes],
  [WORKLOADS, renderWorkloads],
  [["pods"], renderPods],
  [["services", "endpointslices"], renderServices],
  [["events"], renderEvents],
];

/** Re-render the sections that show any of the `dirty` collections. */
export function render(state, dirty) {
  for (const [sources, fn] of SECTIONS) {
    if (sources.some((s) => dirty.has(s)) && sources.every((s) => state.collections[s])) fn(state);
  }
  document.body.dataset.synced = String(Object.values(state.collections).every((c) => c.synced));
}
