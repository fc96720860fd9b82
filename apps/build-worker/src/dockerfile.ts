// The Dockerfile as Docker 1.0's builder read it (../shared/api/BUILDER.md §2):
// full-line comments dropped first, then continuation lines joined, then
// one step per non-empty line, split at the first space.
import { refused } from '@stevedore/errors';

export interface Step {
  /** The line as written, trimmed: what `Step N : …` prints. */
  line: string;
  /** Upper-cased. */
  instruction: string;
  args: string;
}

export function parseDockerfile(text: string): Step[] {
  const withoutComments = text
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('\n');
  // A backslash at the end of a line (spaces around it allowed) joins the next line, dropping the spaces before it.
  const joined = withoutComments.replace(/[ \t]*\\[ \t]*\r?\n/g, '');
  const steps: Step[] = [];
  for (const raw of joined.split('\n')) {
    const line = raw.replace(/\t/g, ' ').replace(/^[ \r\n]+|[ \r\n]+$/g, '');
    if (!line) continue;
    const space = line.indexOf(' ');
    if (space < 0) throw refused('Invalid Dockerfile format');
    steps.push({ line, instruction: line.slice(0, space).toUpperCase(), args: line.slice(space + 1).trim() });
  }
  return steps;
}

/** A JSON array of strings (the exec form), or undefined. */
export function jsonArray(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  try {
    const parsed = JSON.parse(args) as unknown;
    return Array.isArray(parsed) && parsed.every((x) => typeof x === 'string') ? (parsed as string[]) : undefined;
  } catch {
    return undefined;
  }
}

/** CMD, ENTRYPOINT and RUN: the exec form, or the shell form through /bin/sh -c. */
export function commandOf(args: string): string[] {
  return jsonArray(args) ?? ['/bin/sh', '-c', args];
}

/** A list as Go's fmt printed it: `[/bin/sh -c echo hi]`. */
export function goList(list: string[]): string {
  return `[${list.join(' ')}]`;
}

/** `$NAME` and `${NAME}` from the environment; unknown names stay; `\$` is not replaced (the backslash stays). */
export function replaceEnv(text: string, env: string[]): string {
  const values = new Map(env.map((e) => [e.slice(0, e.indexOf('=') < 0 ? e.length : e.indexOf('=')), e.includes('=') ? e.slice(e.indexOf('=') + 1) : '']));
  return text.replace(/(\\?)\$(\{(\w+)\}|(\w+))/g, (whole, escape: string, _b, braced?: string, bare?: string) => {
    if (escape) return whole;
    const name = braced ?? bare ?? '';
    return values.has(name) ? values.get(name)! : whole;
  });
}
