// What the page shows of an object, worked out as kubectl's printers do (pkg/printers/internalversion).

const NONE = "<none>";

function list(v) {
  return Array.isArray(v) ? v : [];
}

function num(v) {
  return Number.isInteger(v) ? v : 0;
}

/** k8s.io/apimachinery's HumanDuration of a number of seconds. */
export function humanDuration(seconds) {
  seconds = Math.trunc(seconds);
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(seconds / 3600);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const dy = Math.floor(hours / 24) % 365;
    const y = Math.floor(hours / 24 / 365);
    return dy === 0 ? `${y}y` : `${y}y${dy}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}

/** Time since an RFC 3339 timestamp, `<unknown>` when unset (translateTimestampSince). */
export function since(timestamp, now = Date.now()) {
  if (!timestamp) return "<unknown>";
  const t = Date.parse(timestamp);
  return Number.isNaN(t) ? "<unknown>" : humanDuration((now - t) / 1000);
}

export function age(obj, now = Date.now()) {
  return since(obj.metadata?.creationTimestamp, now);
}

function conditionTrue(conditions, type) {
  return list(conditions).some((c) => c?.type === type && c?.status === "True");
}

function laterFinish(current, cs) {
  const finished = cs?.lastState?.terminated?.finishedAt;
  if (!finished) return current;
  const t = Date.parse(finished);
  return current === null || current < t ? t : current;
}

function terminatedReason(t, prefix = "") {
  if (t.reason) return prefix + t.reason;
  if (num(t.signal) !== 0) return `${prefix}Signal:${t.signal}`;
  return `${prefix}ExitCode:${num(t.exitCode)}`;
}

/** READY, STATUS and RESTARTS of `kubectl get pods`: {ready, total, reason, restarts, lastRestart}. */
export function podStatus(pod) {
  const spec = pod.spec || {};
  const status = pod.status || {};
  const inits = list(spec.initContainers);
  const conditions = list(status.conditions);
  let restarts = 0;
  let restartableRestarts = 0;
  let total = list(spec.containers).length;
  let ready = 0;
  let lastRestart = null;
  let lastRestartableRestart = null;
  const phase = status.phase || "";
  let reason = status.reason || phase;
  for (const c of conditions) {
    if (c?.type === "PodScheduled" && c?.reason === "SchedulingGated") reason = "SchedulingGated";
  }
  const initByName = new Map(inits.map((c) => [c.name, c]));
  const restartable = (c) => c?.restartPolicy === "Always";
  total += inits.filter(restartable).length;

  let initializing = false;
  const initStatuses = list(status.initContainerStatuses);
  for (let i = 0; i < initStatuses.length; i++) {
    const cs = initStatuses[i];
    restarts += num(cs.restartCount);
    lastRestart = laterFinish(lastRestart, cs);
    const isRestartable = restartable(initByName.get(cs.name));
    if (isRestartable) {
      restartableRestarts += num(cs.restartCount);
      lastRestartableRestart = laterFinish(lastRestartableRestart, cs);
    }
    const terminated = cs.state?.terminated;
    const waiting = cs.state?.waiting;
    if (terminated && num(terminated.exitCode) === 0) continue;
    if (isRestartable && cs.started === true) {
      if (cs.ready === true) ready++;
      continue;
    }
    if (terminated) reason = terminatedReason(terminated, "Init:");
    else if (waiting && waiting.reason && waiting.reason !== "PodInitializing") reason = `Init:${waiting.reason}`;
    else reason = `Init:${i}/${inits.length}`;
    initializing = true;
    break;
  }

  const initialized = conditions.find((c) => c?.type === "Initialized")?.status === "True";
  if (!initializing || initialized) {
    restarts = restartableRestarts;
    lastRestart = lastRestartableRestart;
    let hasRunning = false;
    const statuses = list(status.containerStatuses);
    for (let i = statuses.length - 1; i >= 0; i--) {
      const cs = statuses[i];
      restarts += num(cs.restartCount);
      lastRestart = laterFinish(lastRestart, cs);
      const waiting = cs.state?.waiting;
      const terminated = cs.state?.terminated;
      if (waiting && waiting.reason) reason = waiting.reason;
      else if (terminated) reason = terminatedReason(terminated);
      else if (cs.ready === true && cs.state?.running) {
        hasRunning = true;
        ready++;
      }
    }
    if (reason === "Completed" && hasRunning) reason = conditionTrue(conditions, "Ready") ? "Running" : "NotReady";
  }

  const deleting = Boolean(pod.metadata?.deletionTimestamp);
  if (deleting && status.reason === "NodeLost") reason = "Unknown";
  else if (deleting && phase !== "Succeeded" && phase !== "Failed") reason = "Terminating";
  return { ready, total, reason, restarts, lastRestart };
}

/** The RESTARTS cell: `3 (5m ago)`. */
export function restartsText(summary, now = Date.now()) {
  if (summary.restarts !== 0 && summary.lastRestart !== null) {
    return `${summary.restarts} (${humanDuration((now - summary.lastRestart) / 1000)} ago)`;
  }
  return String(summary.restarts);
}

/** A colour class for a pod STATUS. */
export function statusTone(reason) {
  if (reason === "Running" || reason === "Completed" || reason === "Succeeded") return "ok";
  if (reason === "Pending" || reason === "ContainerCreating" || reason === "PodInitializing") return "wait";
  if (reason === "Terminating" || reason.startsWith("Init:") || reason === "SchedulingGated") return "wait";
  return "bad";
}

export function podIP(pod) {
  const ips = list(pod.status?.podIPs);
  return (ips.length ? ips[0].ip : pod.status?.podIP) || NONE;
}

/** STATUS of `kubectl get nodes`. */
export function nodeStatus(node) {
  let ready = null;
  for (const c of list(node.status?.conditions)) if (c?.type === "Ready") ready = c;
  const parts = [ready === null ? "Unknown" : ready.status === "True" ? "Ready" : "NotReady"];
  if (node.spec?.unschedulable === true) parts.push("SchedulingDisabled");
  return parts.join(",");
}

export function nodeRoles(node) {
  const roles = new Set();
  for (const [k, v] of Object.entries(node.metadata?.labels || {})) {
    if (k.startsWith("node-role.kubernetes.io/")) {
      const role = k.slice("node-role.kubernetes.io/".length);
      if (role) roles.add(role);
    } else if (k === "kubernetes.io/role" && v) roles.add(v);
  }
  return [...roles].sort().join(",") || NONE;
}

export function nodeAddress(node, type) {
  return list(node.status?.addresses).find((a) => a?.type === type)?.address || NONE;
}

/** A node condition that is not in its healthy state (Ready=True, the pressures False). */
export function conditionHealthy(c) {
  return c.type === "Ready" ? c.status === "True" : c.status === "False";
}

function replicas(obj) {
  return obj.spec?.replicas ?? 1;
}

export function jobStatus(job) {
  const conds = job.status?.conditions;
  if (conditionTrue(conds, "Complete")) return "Complete";
  if (conditionTrue(conds, "Failed")) return "Failed";
  if (job.metadata?.deletionTimestamp) return "Terminating";
  if (conditionTrue(conds, "Suspended")) return "Suspended";
  if (conditionTrue(conds, "FailureTarget")) return "FailureTarget";
  if (conditionTrue(conds, "SuccessCriteriaMet")) return "SuccessCriteriaMet";
  return "Running";
}

/** One row of the workloads table: {ready: "2/3", detail, tone} for any workload kind. */
export function workloadSummary(kind, obj, now = Date.now()) {
  const s = obj.status || {};
  switch (kind) {
    case "Deployment": {
      const want = replicas(obj);
      const r = num(s.readyReplicas);
      return {
        ready: `${r}/${want}`,
        detail: `up-to-date ${num(s.updatedReplicas)}, available ${num(s.availableReplicas)}`,
        tone: r >= want ? "ok" : "wait",
      };
    }
    case "ReplicaSet": {
      const want = replicas(obj);
      const r = num(s.readyReplicas);
      return { ready: `${r}/${want}`, detail: `current ${num(s.replicas)}`, tone: r >= want ? "ok" : "wait" };
    }
    case "StatefulSet": {
      const want = replicas(obj);
      const r = num(s.readyReplicas);
      return { ready: `${r}/${want}`, detail: `current ${num(s.currentReplicas)}`, tone: r >= want ? "ok" : "wait" };
    }
    case "DaemonSet": {
      const want = num(s.desiredNumberScheduled);
      const r = num(s.numberReady);
      return {
        ready: `${r}/${want}`,
        detail: `up-to-date ${num(s.updatedNumberScheduled)}, available ${num(s.numberAvailable)}`,
        tone: r >= want ? "ok" : "wait",
      };
    }
    case "Job": {
      const status = jobStatus(obj);
      const completions = obj.spec?.completions;
      const parallelism = num(obj.spec?.parallelism);
      const succeeded = num(s.succeeded);
      let done;
      if (completions !== undefined && completions !== null) done = `${succeeded}/${num(completions)}`;
      else if (parallelism > 1) done = `${succeeded}/1 of ${parallelism}`;
      else done = `${succeeded}/1`;
      let duration = "";
      if (s.startTime) {
        const end = s.completionTime ? Date.parse(s.completionTime) : now;
        duration = `, ${humanDuration((end - Date.parse(s.startTime)) / 1000)}`;
      }
      const tone = status === "Complete" ? "ok" : status === "Failed" ? "bad" : "wait";
      return { ready: done, detail: `${status}${duration}`, tone };
    }
    case "CronJob": {
      const active = list(s.active).length;
      const last = s.lastScheduleTime ? `${since(s.lastScheduleTime, now)} ago` : NONE;
      const suspended = obj.spec?.suspend === true ? ", suspended" : "";
      return { ready: `${active} active`, detail: `${obj.spec?.schedule || ""}, last ${last}${suspended}`, tone: "ok" };
    }
    default:
      return { ready: "", detail: "", tone: "" };
  }
}

export function serviceType(svc) {
  return svc.spec?.type || "ClusterIP";
}

export function clusterIP(svc) {
  const ips = list(svc.spec?.clusterIPs);
  return (ips.length ? ips[0] : svc.spec?.clusterIP) || NONE;
}

export function externalIP(svc) {
  const type = serviceType(svc);
  const external = list(svc.spec?.externalIPs);
  if (type === "ClusterIP" || type === "NodePort") return external.join(",") || NONE;
  if (type === "LoadBalancer") {
    const lb = new Set();
    for (const ing of list(svc.status?.loadBalancer?.ingress)) {
      if (ing.ip) lb.add(ing.ip);
      else if (ing.hostname) lb.add(ing.hostname);
    }
    const lbs = [...lb].sort();
    if (external.length) return [...lbs, ...external].join(",");
    return lbs.join(",") || "<pending>";
  }
  if (type === "ExternalName") return svc.spec?.externalName || "";
  return "<unknown>";
}

export function servicePorts(svc) {
  return (
    list(svc.spec?.ports)
      .map((p) => {
        const proto = p.protocol || "TCP";
        return num(p.nodePort) > 0 ? `${p.port}:${p.nodePort}/${proto}` : `${p.port}/${proto}`;
      })
      .join(",") || NONE
  );
}

/** The ready `ip:port` endpoints of a Service from its EndpointSlices (what `kubectl get endpoints` lists). */
export function serviceEndpoints(svc, slices) {
  const out = [];
  const ns = svc.metadata.namespace;
  const name = svc.metadata.name;
  for (const sl of slices) {
    if (sl.metadata?.namespace !== ns || sl.metadata?.labels?.["kubernetes.io/service-name"] !== name) continue;
    const ports = list(sl.ports);
    for (const ep of list(sl.endpoints)) {
      if (ep.conditions?.ready === false) continue;
      for (const addr of list(ep.addresses)) {
        const host = addr.includes(":") ? `[${addr}]` : addr;
        if (!ports.length) out.push(addr);
        for (const p of ports) if (p.port !== undefined && p.port !== null) out.push(`${host}:${p.port}`);
      }
    }
  }
  return [...new Set(out)].sort();
}

/** The object an Event is about: `pod/web-1`. */
export function eventObject(ev) {
  const o = ev.involvedObject || ev.regarding || {};
  return `${(o.kind || "").toLowerCase()}/${o.name || ""}`;
}

/** When an Event last happened (as `kubectl get events` sorts them). */
export function eventTime(ev) {
  const t = ev.series?.lastObservedTime || ev.lastTimestamp || ev.eventTime || ev.metadata?.creationTimestamp;
  return t ? Date.parse(t) : 0;
}

const BINARY = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL = { n: 1e-9, u: 1e-6, m: 1e-3, "": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

/** A resource.Quantity string as a number (`250m` → 0.25, `1Ki` → 1024); NaN when malformed. */
export function parseQuantity(q) {
  const m = /^([+-]?[0-9.]+)(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$/.exec(String(q ?? "").trim());
  if (!m) return Number.NaN;
  const value = Number(m[1]);
  if (m[2]) return value * 10 ** Number(m[2].slice(1));
  const suffix = m[3] || "";
  return value * (BINARY[suffix] ?? DECIMAL[suffix]);
}

/** CPU cores as kubectl top prints them: `250m`. */
export function formatCPU(cores) {
  return `${Math.round(cores * 1000)}m`;
}

/** Bytes as kubectl top prints memory: `12Mi`. */
export function formatMemory(bytes) {
  return `${Math.round(bytes / 2 ** 20)}Mi`;
}
