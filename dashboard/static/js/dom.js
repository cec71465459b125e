// Building DOM nodes from data: text always goes in as text, never as HTML.

/** An element: h("td", {class: "x", onclick: fn}, "text", child, …). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
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

/**
 * Keeps a <tbody> in step with a list of objects, rebuilding only the rows whose signature
 * changed (an object's resourceVersion, plus whatever else the row shows).
 */
export class KeyedRows {
  constructor(tbody) {
    this.tbody = tbody;
    this.rows = new Map();
  }

  update(items, key, signature, build) {
    const next = new Map();
    const order = [];
    for (const item of items) {
      const k = key(item);
      const sig = signature(item);
      let row = this.rows.get(k);
      if (!row || row.sig !== sig) {
        const tr = build(item);
        tr.dataset.key = k;
        row = { sig, tr };
      }
      next.set(k, row);
      order.push(row.tr);
    }
    this.rows = next;
    const current = this.tbody.children;
    let same = current.length === order.length;
    for (let i = 0; same && i < order.length; i++) same = current[i] === order[i];
    if (!same) this.tbody.replaceChildren(...order);
  }
}
