// API versions: how a request's /vX.Y prefix is read and compared.

/** The newest API version Stevedore serves (Docker 1.0's). */
export const CURRENT_API_VERSION = '1.12';
/** The oldest documented one; older prefixes are still accepted (as Docker 1.0 did). */
export const MIN_API_VERSION = '1.0';

export type ApiVersion = readonly number[];

const parsed = new Map<string, ApiVersion>();

/** "1.12" -> [1, 12]. A non-numeric part counts as 0, as in Docker 1.0. (Remembered: a few versions come again and again.) */
export function parseApiVersion(text: string): ApiVersion {
  let v = parsed.get(text);
  if (!v) {
    v = text.split('.').map((p) => {
      const n = Number.parseInt(p, 10);
      return Number.isNaN(n) ? 0 : n;
    });
    if (parsed.size < 256) parsed.set(text, v);
  }
  return v;
}

/** Component-wise comparison, the shorter one padded with zeros: 1.10 > 1.9, 1.12.0 == 1.12. */
export function compareApiVersions(a: ApiVersion | string, b: ApiVersion | string): number {
  const x = typeof a === 'string' ? parseApiVersion(a) : a;
  const y = typeof b === 'string' ? parseApiVersion(b) : b;
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

export const versionAtLeast = (v: ApiVersion | string, min: string) => compareApiVersions(v, min) >= 0;
export const versionBelow = (v: ApiVersion | string, bound: string) => compareApiVersions(v, bound) < 0;
/** Strictly newer (Docker 1.0's `v > 1.0`, `v > 1.6`: /v1.0.1 is newer than 1.0). */
export const versionAbove = (v: ApiVersion | string, bound: string) => compareApiVersions(v, bound) > 0;
