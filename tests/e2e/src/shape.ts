// The shape of an API answer, values aside: JSON keys and value types
// (recursively; the elements of an array merged into one shape), so that
// two engines' answers to the same request can be compared.

export type Shape = string | { [key: string]: Shape } | Shape[];

export function shapeOf(value: unknown): Shape {
  if (value === null) return 'null';
  if (Array.isArray(value)) {
    const merged: Record<string, Shape> = {};
    let scalar: Shape | undefined;
    for (const v of value) {
      const s = shapeOf(v);
      if (typeof s === 'object' && !Array.isArray(s)) Object.assign(merged, s);
      else scalar = s;
    }
    if (Object.keys(merged).length) return [merged];
    return scalar === undefined ? [] : [scalar];
  }
  if (typeof value === 'object') return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, shapeOf(v)]));
  return typeof value;
}

export interface ShapeDifference {
  /** Path of the key, `$` the answer itself, `[]` an array's elements. */
  path: string;
  kind: 'only in reference' | 'only in stevedore' | 'type';
  reference?: string;
  stevedore?: string;
}

const describe = (s: Shape): string => (typeof s === 'string' ? s : Array.isArray(s) ? 'array' : 'object');

/**
 * The differences between two shapes. A key whose value is null on one side
 * is no type difference (Docker's "empty" is null or a value by case); an
 * empty array matches any array.
 */
export function compareShapes(reference: Shape, stevedore: Shape, path = '$'): ShapeDifference[] {
  const out: ShapeDifference[] = [];
  if (reference === 'null' || stevedore === 'null') return out;
  if (Array.isArray(reference) && Array.isArray(stevedore)) {
    if (reference.length && stevedore.length) out.push(...compareShapes(reference[0], stevedore[0], `${path}[]`));
    return out;
  }
  if (typeof reference === 'object' && typeof stevedore === 'object' && !Array.isArray(reference) && !Array.isArray(stevedore)) {
    for (const k of Object.keys(reference)) {
      if (!(k in stevedore)) out.push({ path: `${path}.${k}`, kind: 'only in reference' });
      else out.push(...compareShapes(reference[k], stevedore[k], `${path}.${k}`));
    }
    for (const k of Object.keys(stevedore)) if (!(k in reference)) out.push({ path: `${path}.${k}`, kind: 'only in stevedore' });
    return out;
  }
  if (describe(reference) !== describe(stevedore) || (typeof reference === 'string' && reference !== stevedore)) {
    out.push({ path, kind: 'type', reference: describe(reference), stevedore: describe(stevedore) });
  }
  return out;
}
