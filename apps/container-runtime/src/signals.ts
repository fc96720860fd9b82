// Signals as `docker kill -s` names them: a Linux number, or its name with
// or without `SIG`, in any case.
import { refused } from '@stevedore/errors';

export const SIGKILL = 9;
export const SIGTERM = 15;

const SIGNALS: Record<string, number> = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, IOT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10, SEGV: 11, USR2: 12, PIPE: 13, ALRM: 14, TERM: 15,
  STKFLT: 16, CHLD: 17, CONT: 18, STOP: 19, TSTP: 20, TTIN: 21, TTOU: 22, URG: 23, XCPU: 24, XFSZ: 25, VTALRM: 26, PROF: 27, WINCH: 28, IO: 29, PWR: 30, SYS: 31,
};

/** The signal `kill` sends: SIGKILL when none is named, as in Docker 1.0. */
export function parseSignal(raw: string): number {
  if (raw === '') return SIGKILL;
  if (/^\d+$/.test(raw)) {
    const n = Number(raw);
    if (n >= 1 && n <= 31) return n;
  } else {
    const n = SIGNALS[raw.toUpperCase().replace(/^SIG/, '')];
    if (n) return n;
  }
  throw refused(`Invalid signal: ${raw}`);
}
