import { Random } from './random';

/** Chances per request (0..1) of each fault; drawn from a seeded generator, so a run repeats exactly. */
export interface FaultProbabilities {
  error5xx?: number;
  tooManyRequests?: number;
  drop?: number;
  slow?: number;
  /** Delay of a `slow` fault; default 1000 ms. */
  slowMs?: number;
  /** `Retry-After` of a probabilistic 429; default 1 s. */
  retryAfterSeconds?: number;
  seed?: number;
}

export type ScriptedFault =
  | { kind: '5xx'; status?: 500 | 502 | 503 | 504 }
  | { kind: '429'; retryAfter?: string /* as sent: "2" or an HTTP date */ }
  | { kind: 'refused'; status: 401 | 403 | 404 } // 401: FPX refusing who calls (certificate or user token); 403/404: a tenant it does not let us touch
  | { kind: 'drop' } // destroy the socket before doing anything
  | { kind: 'dropAfterHandling' } // perform the request (e.g. create the note), then destroy the socket without answering
  | { kind: 'applyThen5xx'; status?: 500 | 502 | 503 | 504 } // perform the request, then answer a 5xx (FPX-NOTES #13)
  | { kind: 'slow'; delayMs: number };

export interface FaultMatch {
  method?: string;
  /** Tested against the path after the API base, e.g. `/tenants/…/notes`. */
  path?: RegExp;
}

interface Queued {
  fault: ScriptedFault;
  match: FaultMatch;
  remaining: number;
}

const SERVER_ERRORS = [500, 502, 503, 504] as const;

export class Faults {
  private readonly queue: Queued[] = [];
  private probabilities: FaultProbabilities = {};
  private random = new Random(1, 'faults');

  constructor(probabilities: FaultProbabilities = {}) {
    this.setProbabilities(probabilities);
  }

  setProbabilities(probabilities: FaultProbabilities): void {
    this.probabilities = probabilities;
    this.random = new Random(probabilities.seed ?? 1, 'faults');
  }

  /** Queues a one-shot fault for the next `times` requests that match. */
  inject(fault: ScriptedFault, match: FaultMatch = {}, times = 1): void {
    if (times > 0) this.queue.push({ fault, match, remaining: times });
  }

  /** The fault for this request: scripted ones first, in the order queued; then the probabilities. */
  next(method: string, path: string): ScriptedFault | undefined {
    const index = this.queue.findIndex((queued) => matches(queued.match, method, path));
    const queued = this.queue[index];
    if (queued) {
      queued.remaining -= 1;
      if (queued.remaining <= 0) this.queue.splice(index, 1);
      return queued.fault;
    }
    return this.draw();
  }

  private draw(): ScriptedFault | undefined {
    const p = this.probabilities;
    if (!p.drop && !p.error5xx && !p.tooManyRequests && !p.slow) return undefined;
    // One draw per request over adjacent ranges, so each probability is exactly its own.
    const roll = this.random.next();
    let upTo = p.drop ?? 0;
    if (roll < upTo) return { kind: 'drop' };
    upTo += p.error5xx ?? 0;
    if (roll < upTo) return { kind: '5xx', status: this.random.pick(SERVER_ERRORS) };
    upTo += p.tooManyRequests ?? 0;
    if (roll < upTo) return { kind: '429', retryAfter: String(p.retryAfterSeconds ?? 1) };
    upTo += p.slow ?? 0;
    if (roll < upTo) return { kind: 'slow', delayMs: p.slowMs ?? 1000 };
    return undefined;
  }
}

function matches(match: FaultMatch, method: string, path: string): boolean {
  if (match.method && match.method.toUpperCase() !== method) return false;
  if (match.path) {
    match.path.lastIndex = 0; // a /g or /y pattern would otherwise remember where it stopped
    if (!match.path.test(path)) return false;
  }
  return true;
}
