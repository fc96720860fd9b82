// Docker's JSON message streams (pull, push, import, build) and their text
// form for v1.0, as STREAMS.md §5 describes them.
import { goJson } from './json';

export interface ProgressMessage {
  status?: string;
  id?: string;
  current?: number;
  total?: number;
  /** Unix seconds. */
  start?: number;
  error?: string;
  /** A per-layer line: carries progressDetail even without numbers. */
  perLayer?: boolean;
  /** A piece of build output. */
  stream?: string;
  /** errorDetail.code (build exit codes). */
  errorCode?: number;
}

/** `%.4g` in units of `base`: 2.433 MB, 524.3 kB, 512 B. */
function scaled(bytes: number, base: number, units: string[]): string {
  let i = 0;
  let v = bytes;
  while (v >= base && i < units.length - 1) {
    v /= base;
    i++;
  }
  return `${Number(v.toPrecision(4))} ${units[i]}`;
}

/** Go's units.HumanSize (powers of 1000), as Docker wrote sizes: 2.433 MB. */
export function humanSize(bytes: number): string {
  return scaled(bytes, 1000, ['B', 'kB', 'MB', 'GB', 'TB', 'PB']);
}

/** Go's units.BytesSize (powers of 1024), as Docker Swarm wrote memory: 1.888 GiB. */
export function binarySize(bytes: number): string {
  return scaled(bytes, 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']);
}

function goDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h ? `${h}h${m}m${r}s` : m ? `${m}m${r}s` : `${r}s`;
}

/** The human progress text: a bar and current/total, with the time left while running. */
export function progressText(current: number, total: number, start: number, nowSeconds = Date.now() / 1000): string {
  if (current <= 0 && total <= 0) return '';
  if (total <= 0) return humanSize(current).padStart(8);
  const percent = Math.floor((current * 100) / total);
  const k = Math.min(50, Math.floor(percent / 2));
  const bar = `[${'='.repeat(k)}>${' '.repeat(Math.max(0, 50 - k))}] `;
  let text = `${bar}${humanSize(current).padStart(8)}/${humanSize(total)}`;
  if (k < 50 && start > 0 && current > 0) {
    const elapsed = nowSeconds - start;
    text += ` ${goDuration((elapsed / current) * (total - current))}`;
  }
  return text;
}


/** One message of a JSON stream, with the separator Docker 1.0 put after it. */
export function jsonMessage(m: ProgressMessage, nowSeconds?: number): string {
  if (m.error !== undefined) {
    const detail: Record<string, unknown> = {};
    if (m.errorCode) detail.code = m.errorCode;
    detail.message = m.error;
    return `${goJson({ errorDetail: detail, error: m.error })}\r\n`;
  }
  if (m.stream !== undefined) return `${goJson({ stream: m.stream })}\r\n`;
  const hasNumbers = (m.current ?? 0) > 0 || (m.total ?? 0) > 0;
  if (!m.perLayer && !hasNumbers && !m.id) return `${goJson({ status: m.status })}\r\n`;
  const o: Record<string, unknown> = { status: m.status };
  const detail: Record<string, number> = {};
  if (m.current) detail.current = m.current;
  if (m.total) detail.total = m.total;
  if (m.start) detail.start = m.start;
  o.progressDetail = detail;
  const text = progressText(m.current ?? 0, m.total ?? 0, m.start ?? 0, nowSeconds);
  if (text) o.progress = text;
  if (m.id) o.id = m.id;
  return goJson(o);
}

/** The text form (pull/import/push at v1.0, build before v1.8). */
export function textMessage(m: ProgressMessage, nowSeconds?: number): string {
  if (m.error !== undefined) return `Error: ${m.error}\r\n`;
  if (m.stream !== undefined) return `${m.stream}\r`;
  const hasNumbers = (m.current ?? 0) > 0 || (m.total ?? 0) > 0;
  if (!m.perLayer && !hasNumbers) return `${m.status ?? ''}\r\n`;
  const text = progressText(m.current ?? 0, m.total ?? 0, m.start ?? 0, nowSeconds);
  return text ? `${m.status} ${text}\r` : `${m.status} \r\n`;
}
