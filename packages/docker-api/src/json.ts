// JSON as Docker 1.0's Go encoder wrote it (ENDPOINTS.md, "JSON object responses").

const GO_ESCAPES: Record<string, string> = { '<': '\\u003c', '>': '\\u003e', '&': '\\u0026', '\u2028': '\\u2028', '\u2029': '\\u2029' };
const GO_ESCAPED = /[<>&\u2028\u2029]/g;
const HAS_GO_ESCAPED = /[<>&\u2028\u2029]/;

/** JSON text with `<`, `>`, `&` (and the two line separators) escaped, as Go's encoder did (` ---\u003e`). */
export function goJson(value: unknown): string {
  const text = JSON.stringify(value);
  // These characters can only occur inside strings, where the escape means the same character.
  return HAS_GO_ESCAPED.test(text) ? text.replace(GO_ESCAPED, (c) => GO_ESCAPES[c]) : text;
}

/** A list the way Docker 1.0's engine tables wrote it: `[`, each object followed by a newline, joined by `,`, `]`. */
export function engineList(items: unknown[]): string {
  return `[${items.map((i) => `${goJson(i)}\n`).join(',')}]`;
}

/** Keys sorted at every depth: an object that went through Docker 1.0's key/value type came out so. */
export function sortedDeep<T>(value: T): T {
  if (Array.isArray(value)) return value.map(sortedDeep) as T;
  if (value === null || typeof value !== 'object') return value;
  const keys = Object.keys(value).sort();
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k] = sortedDeep((value as Record<string, unknown>)[k]);
  return out as T;
}
