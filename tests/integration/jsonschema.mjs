// A small JSON Schema validator (the keywords the grammar compiler takes), independent of
// the server's compiler: structured outputs and tool-call arguments are checked with it.
function resolve(root, ref) {
  let t = root;
  for (const part of ref.replace(/^#\/?/, '').split('/').filter((p) => p.length)) t = t?.[part];
  return t;
}
const typeOk = (v, t) => ({
  object: v !== null && typeof v === 'object' && !Array.isArray(v),
  array: Array.isArray(v), string: typeof v === 'string', boolean: typeof v === 'boolean', null: v === null,
  number: typeof v === 'number', integer: Number.isInteger(v),
})[t];
const equal = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const FORMATS = {
  date: /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/,
  time: /^([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/,
  'date-time': /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/,
  uuid: /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/,
  email: /^[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+)*@[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/,
  hostname: /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/,
  ipv4: /^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/,
  ipv6: /^([0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}$/,
  uri: /^https?:\/\/[^\s/$.?#].[^\s]*$/,
  duration: /^P(?!$)((\d+Y)?(\d+M)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?|(\d+W)?)$/,
};
export function validate(root, s, v, path = '') {
  if (s === true) return null;
  if (s === false) return `${path}: schema false`;
  if (s.$ref) return validate(root, resolve(root, s.$ref), v, path);
  if ('const' in s && !equal(s.const, v)) return `${path}: not the const`;
  if (s.enum && !s.enum.some((e) => equal(e, v))) return `${path}: not in enum`;
  if (s.anyOf && !s.anyOf.some((a) => !validate(root, a, v, path))) return `${path}: no anyOf alternative`;
  if (s.oneOf && s.oneOf.filter((a) => !validate(root, a, v, path)).length !== 1) return `${path}: not exactly one oneOf`;
  for (const a of s.allOf ?? []) { const e = validate(root, a, v, path); if (e) return e; }
  if (s.type && ![s.type].flat().some((t) => typeOk(v, t))) return `${path}: wrong type`;
  if (typeOk(v, 'object')) {
    for (const k of s.required ?? []) if (!(k in v)) return `${path}: missing ${k}`;
    for (const [k, x] of Object.entries(v)) {
      if (s.properties && k in s.properties) { const e = validate(root, s.properties[k], x, `${path}/${k}`); if (e) return e; }
      else if (s.additionalProperties === false) return `${path}/${k}: additional property`;
      else if (typeof s.additionalProperties === 'object') { const e = validate(root, s.additionalProperties, x, `${path}/${k}`); if (e) return e; }
    }
  }
  if (Array.isArray(v)) {
    if (s.minItems !== undefined && v.length < s.minItems) return `${path}: too few items`;
    if (s.maxItems !== undefined && v.length > s.maxItems) return `${path}: too many items`;
    for (let i = 0; i < v.length; i++) {
      const is = i < (s.prefixItems?.length ?? 0) ? s.prefixItems[i] : s.items;
      if (is === false) return `${path}/${i}: item not allowed`;
      if (is !== undefined) { const e = validate(root, is, v[i], `${path}/${i}`); if (e) return e; }
    }
  }
  if (typeof v === 'string') {
    const n = [...v].length;
    if (s.minLength !== undefined && n < s.minLength) return `${path}: too short`;
    if (s.maxLength !== undefined && n > s.maxLength) return `${path}: too long`;
    if (s.pattern && !new RegExp(s.pattern, 'u').test(v)) return `${path}: pattern`;
    if (s.format && FORMATS[s.format] && !FORMATS[s.format].test(v)) return `${path}: format ${s.format}`;
  }
  if (typeof v === 'number') {
    if (s.minimum !== undefined && v < s.minimum) return `${path}: below minimum`;
    if (s.maximum !== undefined && v > s.maximum) return `${path}: above maximum`;
    if (s.exclusiveMinimum !== undefined && v <= s.exclusiveMinimum) return `${path}: exclusiveMinimum`;
    if (s.exclusiveMaximum !== undefined && v >= s.exclusiveMaximum) return `${path}: exclusiveMaximum`;
  }
  return null;
}
