// Sparklines of the metrics API's samples (kept in the page: metrics.k8s.io has no watch or history).

import { html } from "./dom.js";

const KEEP = 30;

/** Recent samples per object: {cpu: [cores…], memory: [bytes…]}. */
export class Samples {
  constructor() {
    this.series = new Map();
    this.version = 0;
  }

  add(key, cpu, memory) {
    let s = this.series.get(key);
    if (!s) {
      s = { cpu: [], memory: [] };
      this.series.set(key, s);
    }
    s.cpu.push(cpu);
    s.memory.push(memory);
    if (s.cpu.length > KEEP) s.cpu.shift();
    if (s.memory.length > KEEP) s.memory.shift();
  }

  /** Forget the objects not in `keys` (deleted since). */
  keep(keys) {
    for (const k of this.series.keys()) if (!keys.has(k)) this.series.delete(k);
    this.version++;
  }

  get(key) {
    return this.series.get(key);
  }
}

/** A small line chart of `values` scaled to `max` (or to their own highest value), as SVG markup. */
export function sparkline(values, max, label) {
  const w = 64;
  const hgt = 18;
  const top = max || Math.max(...values, 1e-9);
  const step = values.length > 1 ? w / (KEEP - 1) : 0;
  const x0 = w - step * (values.length - 1);
  const points = values.map((v, i) => {
    const y = hgt - 1 - Math.min(v / top, 1) * (hgt - 2);
    return `${(x0 + i * step).toFixed(1)},${y.toFixed(1)}`;
  });
  return html`<svg class="spark" viewBox="0 0 ${w} ${hgt}" width="${w}" height="${hgt}" role="img" aria-label="${label}"><polyline points="${points.join(" ")}"></polyline></svg>`;
}
