// Building the page from data. Table rows are HTML strings from the `html` template tag, which
// escapes every interpolated value (so object fields are always text), parsed in one batch.

/** An element: h("td", {class: "x", onclick: fn}, "text", child, …). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** Markup made by `html`: put in as it is when interpolated into more `html`. */
export class Html {
  constructor(text) {
    this.text = text;
  }

  toString() {
    return this.text;
  }
}

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escape(value) {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

function part(v) {
  if (v === null || v === undefined || v === false) return "";
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(part).join("");
  return escape(v);
}

/** html`<td>${value}</td>`: markup with every value escaped (arrays joined, Html kept). */
export function html(strings, ...values) {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += part(values[i]) + strings[i + 1];
  return new Html(out);
}

/**
 * Keeps a <tbody> in step with a list of objects, rebuilding only the rows whose signature
 * changed (an object's resourceVersion, plus whatever else the row shows). `build` returns a
 * row's `<tr>` as Html; new rows are parsed together.
 */
export class KeyedRows {
  constructor(tbody) {
    this.tbody = tbody;
    this.rows = new Map();
  }

  update(items, key, signature, build) {
    const next = new Map();
    const order = [];
    const fresh = [];
    for (const item of items) {
      const k = key(item);
      const sig = signature(item);
      let row = this.rows.get(k);
      if (!row || row.sig !== sig) {
        row = { sig, tr: null, key: k };
        fresh.push({ row, markup: build(item).text });
      }
      next.set(k, row);
      order.push(row);
    }
    if (fresh.length) {
      const parsed = document.createElement("tbody");
      parsed.innerHTML = fresh.map((f) => f.markup).join("");
      const trs = [...parsed.children];
      fresh.forEach((f, i) => {
        f.row.tr = trs[i];
        trs[i].dataset.key = f.row.key;
      });
    }
    this.rows = next;
    const current = this.tbody.children;
    let same = current.length === order.length;
    for (let i = 0; same && i < order.length; i++) same = current[i] === order[i].tr;
    if (!same) this.tbody.replaceChildren(...order.map((r) => r.tr));
  }
}
