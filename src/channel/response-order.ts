/**
 * Responses to my commands received and not yet applied, by ticket (taken in arrival order), and
 * the peer's requests waiting for every response received before them to be applied (a request
 * may read a version only a command of mine, whose response is on its way, writes).
 */
export interface ResponseOrder {
  /** A response arrived: returns what marks it applied in memory (or refused); idempotent. */
  arrive(): () => void;
  /** Whether a response received is not applied yet. */
  readonly unapplied: boolean;
  /** Resolves once every response received until now is applied in memory (or refused). */
  receivedSoFar(): Promise<void>;
  /** Requests waiting in {@link receivedSoFar}. */
  readonly waiting: number;
}

export function createResponseOrder(): ResponseOrder {
  let nextTicket = 0;
  const unappliedResponses = new Set<number>();
  let responseWaiters: Array<{ before: number; wake: () => void }> = [];

  function responseApplied(ticket: number): void {
    unappliedResponses.delete(ticket);
    if (responseWaiters.length === 0) return;
    let oldest = nextTicket;
    for (const t of unappliedResponses) oldest = Math.min(oldest, t);
    const waiting = responseWaiters;
    responseWaiters = [];
    for (const w of waiting) {
      if (w.before <= oldest) w.wake();
      else responseWaiters.push(w);
    }
  }

  return {
    arrive() {
      const ticket = nextTicket++;
      unappliedResponses.add(ticket);
      return () => {
        if (unappliedResponses.has(ticket)) responseApplied(ticket);
      };
    },
    get unapplied() {
      return unappliedResponses.size > 0;
    },
    receivedSoFar: () => new Promise<void>((wake) => responseWaiters.push({ before: nextTicket, wake })),
    get waiting() {
      return responseWaiters.length;
    },
  };
}
