// The page's only way to the cluster: the dashboard's proxy to the apiserver, with the user's token.

import { objectKey } from "./resources.js";

const TOKEN_KEY = "tinykube-dashboard.token";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function authHeaders() {
  const t = token();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

/** An API answer that was not a success, carrying the `Status` the apiserver sent. */
export class ApiError extends Error {
  constructor(code, status) {
    super(status?.message || `HTTP ${code}`);
    this.code = code;
    this.status = status;
    this.reason = status?.reason || "";
  }
}

async function failure(response) {
  let status = null;
  const text = await response.text();
  try {
    status = JSON.parse(text);
  } catch {
    status = { message: text.trim() || `${response.status} ${response.statusText}` };
  }
  return new ApiError(response.status, status);
}

/** One API request through `/k8s`; the decoded JSON answer, or an ApiError with the API's message. */
export async function request(method, path, { body, contentType, signal } = {}) {
  const headers = { Accept: "application/json", ...authHeaders() };
  if (body !== undefined) headers["Content-Type"] = contentType || "application/json";
  let response;
  try {
    response = await fetch(`/k8s${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, { message: `the dashboard is unreachable: ${e.message}` });
  }
  if (!response.ok) throw await failure(response);
  return response.status === 204 ? null : response.json();
}

/** A whole list, page by page: {items, resourceVersion}. */
export async function listAll(path, signal) {
  const items = [];
  let cont = "";
  for (;;) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await request("GET", `${path}${sep}limit=2000${cont ? `&continue=${encodeURIComponent(cont)}` : ""}`, {
      signal,
    });
    items.push(...(page.items || []));
    cont = page.metadata?.continue || "";
    if (!cont) return { items, resourceVersion: page.metadata?.resourceVersion || "" };
  }
}

/** Lines of a streamed response body as they arrive. */
export async function* lines(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let nl = buffer.indexOf("\n");
      while (nl >= 0) {
        yield buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        nl = buffer.indexOf("\n");
      }
    }
    if (buffer) yield buffer;
  } finally {
    reader.cancel().catch(() => {});
  }
}

/** A streamed GET through `/k8s` (a followed log): the Response, or an ApiError. */
export async function stream(path, signal) {
  const response = await fetch(`/k8s${path}`, { headers: authHeaders(), signal, cache: "no-store" });
  if (!response.ok) throw await failure(response);
  return response;
}

/** The objects of one list path, kept current by a watch. */
export class Collection {
  constructor(name, path) {
    this.name = name;
    this.path = path;
    this.items = new Map();
    this.resourceVersion = "";
    this.synced = false;
    this.error = null;
  }

  replace(items, resourceVersion) {
    this.items = new Map(items.map((o) => [objectKey(o), o]));
    this.resourceVersion = resourceVersion;
    this.synced = true;
    this.error = null;
  }

  apply(event) {
    const obj = event.object || {};
    const rv = obj.metadata?.resourceVersion;
    if (event.type === "ADDED" || event.type === "MODIFIED") this.items.set(objectKey(obj), obj);
    else if (event.type === "DELETED") this.items.delete(objectKey(obj));
    if (rv) this.resourceVersion = rv;
  }

  get(key) {
    return this.items.get(key);
  }

  values() {
    return [...this.items.values()];
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A list that failed is tried again after this long, doubling up to RETRY_MAX_MS while it keeps failing.
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 30000;

/**
 * Lists a set of collections, then watches them all on one `/k8s-watch` stream from the lists'
 * resourceVersions. When the stream ends or breaks, every watch resumes from the last
 * resourceVersion it saw; a collection whose watch answers 410 Expired is listed again first.
 * A list that fails (a 403 for a user who may not read it, or a request that failed on its way) leaves
 * that collection out with its error while the others are watched, and is tried again after a backoff
 * (1 s, doubling up to 30 s): the stream is then restarted, every watch resuming where it was.
 */
export class WatchHub {
  constructor(onChange, onState) {
    this.onChange = onChange;
    this.onState = onState;
    this.generation = 0;
    this.abort = null;
    this.collections = [];
  }

  start(collections) {
    this.stop();
    this.collections = collections;
    const generation = ++this.generation;
    this.run(generation);
  }

  stop() {
    this.generation++;
    if (this.abort) this.abort.abort();
    this.abort = null;
  }

  async run(generation) {
    const stale = new Set(this.collections);
    let backoff = 250;
    let retryIn = RETRY_FIRST_MS;
    while (generation === this.generation) {
      const abort = new AbortController();
      this.abort = abort;
      let retry = null;
      let retrying = false;
      try {
        await Promise.all([...stale].map((c) => this.relist(c, abort.signal)));
        stale.clear();
        if (generation !== this.generation) return;
        const watched = this.collections.filter((c) => c.synced && !c.error);
        if (!watched.length) {
          this.onState("error", "nothing can be listed");
          for (const c of this.collections) stale.add(c);
        } else {
          if (this.collections.some((c) => c.error)) {
            retry = setTimeout(() => {
              retrying = true;
              abort.abort();
            }, retryIn);
            retryIn = Math.min(retryIn * 2, RETRY_MAX_MS);
          } else {
            retryIn = RETRY_FIRST_MS;
          }
          const expired = await this.watch(watched, abort.signal, () => {
            backoff = 250;
            this.onState("live");
          });
          for (const c of expired) stale.add(c);
          for (const c of this.collections) if (c.error) stale.add(c);
          if (!expired.length) continue; // a watch ended as watches do: resume at once
        }
      } catch (e) {
        if (retrying && generation === this.generation) {
          for (const c of this.collections) if (c.error) stale.add(c);
          continue; // the failed lists' turn: list them again, then watch everything again
        }
        if (e.name === "AbortError" || generation !== this.generation) return;
        this.onState("error", e.message);
      } finally {
        clearTimeout(retry);
      }
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 8000);
    }
  }

  async relist(c, signal) {
    try {
      const { items, resourceVersion } = await listAll(c.path, signal);
      c.replace(items, resourceVersion);
    } catch (e) {
      if (e.name === "AbortError") throw e;
      c.error = e.message;
      c.synced = true;
      c.items = new Map();
    }
    this.onChange(c);
  }

  /** Watch until the stream ends; the collections that must be listed again. */
  async watch(collections, signal, onOpen) {
    const query = collections
      .map((c) => `w=${encodeURIComponent(`${c.path}?resourceVersion=${c.resourceVersion}&allowWatchBookmarks=true`)}`)
      .join("&");
    const response = await fetch(`/k8s-watch?${query}`, { headers: authHeaders(), signal, cache: "no-store" });
    if (!response.ok) throw await failure(response);
    const expired = [];
    for await (const line of lines(response)) {
      if (!line.trim()) continue;
      const msg = JSON.parse(line);
      if (msg.open) {
        onOpen();
        continue;
      }
      const c = collections[msg.i];
      if (msg.event) {
        if (msg.event.type === "ERROR") {
          const code = msg.event.object?.code;
          if (code === 410) expired.push(c);
          else throw new ApiError(code || 500, msg.event.object);
          continue;
        }
        c.apply(msg.event);
        if (msg.event.type !== "BOOKMARK") this.onChange(c);
      } else if (msg.code === 410) {
        expired.push(c);
      } else if (msg.code) {
        throw new ApiError(msg.code, msg.status); // every watch resumes after a backoff
      }
    }
    return expired;
  }
}
