// Docker's event filters (`filters={"container":["x"],"type":["container"]}`),
// as today's docker CLI sends them: an event passes when, for every key given,
// one of the values matches.
import type { LoggedEvent } from '@stevedore/redis';

export type EventPredicate = (event: LoggedEvent) => boolean;

const MATCHERS: Record<string, (event: LoggedEvent, value: string) => boolean> = {
  container: (e, v) => e.type === 'container' && (e.id === v || e.id.startsWith(v) || e.attributes.name === v || e.attributes.name === v.replace(/^\//, '')),
  image: (e, v) => (e.type === 'image' && (e.id === v || e.id.startsWith(v))) || e.from === v || e.attributes.image === v,
  event: (e, v) => e.action === v,
  type: (e, v) => e.type === v,
};

export function compileFilters(filters: Record<string, { values: string[] }>): EventPredicate {
  const checks = Object.entries(filters)
    .filter(([, f]) => f.values.length > 0)
    .map(([key, f]) => {
      const match = MATCHERS[key];
      // Docker refuses unknown filter keys; the API edge checks them before calling.
      return match ? (e: LoggedEvent) => f.values.some((v) => match(e, v)) : () => true;
    });
  return (e) => checks.every((check) => check(e));
}

export const FILTER_KEYS = Object.keys(MATCHERS);
