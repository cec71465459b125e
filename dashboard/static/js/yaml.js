// A YAML serializer for API objects (the JSON data model: maps, lists, strings, numbers, booleans,
// null), block style like `kubectl get -o yaml`. Strings that YAML would read as something else are
// quoted; multi-line strings use literal blocks.

const PLAIN_UNSAFE = /^[\s\-?:,[\]{}#&*!|>'"%@`]|\s$|:$|: | #|[\x00-\x1f\x7f\u2028\u2029\ufeff]/;
const RESERVED =
  /^(?:~|null|Null|NULL|true|True|TRUE|false|False|FALSE|y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF|<<|=)$/;
const NUMBERISH =
  /^(?:[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)|0x[0-9a-fA-F_]+|0o?[0-7_]+|0b[01_]+|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?)$/;
const DATEISH = /^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}/;

function quote(s) {
  // a JSON string is a valid double-quoted YAML scalar, but for the line and paragraph separators
  return JSON.stringify(s).replace(/\u2028/g, "\\L").replace(/\u2029/g, "\\P");
}

/** A string as a YAML scalar that reads back as that same string. */
export function scalarString(s) {
  if (s === "" || PLAIN_UNSAFE.test(s) || RESERVED.test(s) || NUMBERISH.test(s) || DATEISH.test(s)) return quote(s);
  return s;
}

function scalar(v) {
  if (v === null || v === undefined) return "null";
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "number") {
    if (Number.isFinite(v)) return String(v);
    return Number.isNaN(v) ? ".nan" : v > 0 ? ".inf" : "-.inf";
  }
  return scalarString(String(v));
}

function isBlockable(s) {
  // a literal block keeps every character as it is, but not control characters or trailing
  // spaces, and its indentation is read from the first line that is not empty
  return (
    typeof s === "string" &&
    s.includes("\n") &&
    !/[\x00-\x09\x0b-\x1f\x7f\u2028\u2029\ufeff]/.test(s) &&
    !/ \n| $/.test(s) &&
    !/^\n*[ ]/.test(s) &&
    !s.endsWith("\n\n")
  );
}

function block(s, indent) {
  const pad = " ".repeat(indent);
  const keep = s.endsWith("\n"); // `|` keeps one final newline, `|-` none
  const body = keep ? s.slice(0, -1) : s;
  const lines = body.split("\n").map((l) => (l === "" ? "" : pad + l));
  return `|${keep ? "" : "-"}\n${lines.join("\n")}`;
}

function isEmptyCollection(v) {
  return (Array.isArray(v) && v.length === 0) || (isObject(v) && Object.keys(v).length === 0);
}

function isObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function emit(value, indent, out) {
  const pad = " ".repeat(indent);
  if (Array.isArray(value)) {
    for (const item of value) {
      if (isObject(item) && Object.keys(item).length) {
        const lines = [];
        emit(item, indent + 2, lines);
        lines[0] = `${pad}- ${lines[0].slice(indent + 2)}`;
        out.push(...lines);
      } else if (Array.isArray(item) && item.length) {
        out.push(`${pad}-`);
        emit(item, indent + 2, out);
      } else {
        out.push(`${pad}- ${inline(item, indent + 2)}`);
      }
    }
    return;
  }
  for (const [k, v] of Object.entries(value)) {
    const key = scalarString(k);
    if (isObject(v) && Object.keys(v).length) {
      out.push(`${pad}${key}:`);
      emit(v, indent + 2, out);
    } else if (Array.isArray(v) && v.length) {
      out.push(`${pad}${key}:`);
      emit(v, indent, out); // lists under a key sit at the key's indent, as kubectl prints them
    } else {
      out.push(`${pad}${key}: ${inline(v, indent + 2)}`);
    }
  }
}

function inline(v, indent) {
  if (isEmptyCollection(v)) return Array.isArray(v) ? "[]" : "{}";
  if (isBlockable(v)) return block(v, indent);
  return scalar(v);
}

/** `obj` as a YAML document. */
export function toYaml(obj) {
  if (isEmptyCollection(obj)) return `${Array.isArray(obj) ? "[]" : "{}"}\n`;
  if (!isObject(obj) && !Array.isArray(obj)) return `${scalar(obj)}\n`;
  const out = [];
  emit(obj, 0, out);
  return `${out.join("\n")}\n`;
}
