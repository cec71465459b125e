// The API resources the page lists and watches, and their paths.

export const RESOURCES = {
  namespaces: { group: "/api/v1", namespaced: false, kind: "Namespace" },
  nodes: { group: "/api/v1", namespaced: false, kind: "Node" },
  pods: { group: "/api/v1", namespaced: true, kind: "Pod" },
  deployments: { group: "/apis/apps/v1", namespaced: true, kind: "Deployment" },
  replicasets: { group: "/apis/apps/v1", namespaced: true, kind: "ReplicaSet" },
  statefulsets: { group: "/apis/apps/v1", namespaced: true, kind: "StatefulSet" },
  daemonsets: { group: "/apis/apps/v1", namespaced: true, kind: "DaemonSet" },
  jobs: { group: "/apis/batch/v1", namespaced: true, kind: "Job" },
  cronjobs: { group: "/apis/batch/v1", namespaced: true, kind: "CronJob" },
  services: { group: "/api/v1", namespaced: true, kind: "Service" },
  endpointslices: { group: "/apis/discovery.k8s.io/v1", namespaced: true, kind: "EndpointSlice" },
  events: { group: "/api/v1", namespaced: true, kind: "Event" },
};

export const WORKLOADS = ["deployments", "statefulsets", "daemonsets", "replicasets", "jobs", "cronjobs"];

/** The API path of a collection, or of one object in it. */
export function resourcePath(resource, namespace = "", name = "") {
  const r = RESOURCES[resource];
  const ns = r.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
  return `${r.group}${ns}/${resource}${name ? `/${encodeURIComponent(name)}` : ""}`;
}

/** The key a collection files an object under: `namespace/name`, or `name` for cluster objects. */
export function objectKey(obj) {
  const m = obj.metadata || {};
  return m.namespace ? `${m.namespace}/${m.name}` : m.name;
}
