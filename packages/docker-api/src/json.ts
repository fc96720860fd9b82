// JSON as Docker 1.0's Go encoder wrote it (ENDPOINTS.md, "JSON object responses").

const GO_ESCAPES: Record<string, string> = { '<': '\\u003c', '>': '\\u003e', '&': '\\u0026', '\u2028': '\\u2028', '\u2029': '\\u2029' };
const GO_ESCAPED = /[<>&\u2028\u2029]/g;

/** Escapes what Go's encoder escaped; a scan with indexOf first, far faster than a regular expression on long text that holds none. */
function goEscape(text: string): string {
  const any = text.indexOf('<') >= 0 || text.indexOf('>') >= 0 || text.indexOf('&') >= 0 || text.indexOf('\u2028') >= 0 || text.indexOf('\u2029') >= 0;
  // These characters can only occur inside strings, where the escape means the same character.
  return any ? text.replace(GO_ESCAPED, (c) => GO_ESCAPES[c]) : text;
}

/** JSON text with `<`, `>`, `&` (and the two line separators) escaped, as Go's encoder did (` ---\u003e`). */
export function goJson(value: unknown): string {
  return goEscape(JSON.stringify(value));
}

/** A list the way Docker 1.0's engine tables wrote it: `[`, each object followed by a newline, joined by `,`, `]`. */
export function engineList(items: unknown[]): string {
  let text = '[';
  for (let i = 0; i < items.length; i++) text += `${i ? ',' : ''}${JSON.stringify(items[i])}\n`;
  return goEscape(`${text}]`);
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
