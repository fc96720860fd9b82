// docker search against a registry of today: its catalog (followed page by
// page, as the registry links them), filtered by the term.
import { refused } from '@stevedore/errors';
import type { images } from '@stevedore/contracts';
import type { RegistrySession } from './session';

const MAX_PAGES = 100;

export async function searchCatalog(session: RegistrySession, prefix: string, term: string): Promise<images.SearchResult[]> {
  await session.authenticate();
  const names: string[] = [];
  let next: string | undefined = '_catalog?n=100';
  for (let page = 0; next && page < MAX_PAGES; page++) {
    const res = await session.fetch(next);
    if (!res.ok) throw refused(`The registry at ${session.address.host} cannot be searched (${res.status} ${res.statusText})`);
    const { repositories } = (await res.json()) as { repositories?: string[] };
    names.push(...(repositories ?? []));
    const link = /<([^>]+)>;\s*rel="next"/.exec(res.headers.get('link') ?? '')?.[1];
    next = link ? session.resolve(link) : undefined;
  }
  return names
    .filter((r) => r.includes(term))
    .sort()
    .map((r) => ({ name: `${prefix}${r}`, description: '', starCount: 0, isOfficial: false, isAutomated: false }));
}
