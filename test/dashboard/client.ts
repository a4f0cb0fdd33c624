import { io, type Socket } from 'socket.io-client';
import type { ZodType } from 'zod';
import {
  type DashboardDelta,
  DashboardEvents,
  DashboardSnapshot,
  type ServerToClientEvents,
} from '../../src/dashboard/events.js';

/** A socket.io dashboard client that checks every payload against the contract. */
export interface DashboardClient {
  readonly socket: Socket<ServerToClientEvents>;
  readonly snapshot: Promise<DashboardSnapshot>;
  readonly deltas: DashboardDelta[];
  /** Every event name received, in order. */
  readonly names: string[];
  /** Payloads that did not match their schema (should stay empty). */
  readonly violations: string[];
  /** Resolves with the first delta for which `check` holds (past deltas included). */
  until(check: (delta: DashboardDelta) => boolean, timeoutMs?: number): Promise<DashboardDelta>;
  close(): void;
}

/**
 * Checks a payload strictly: it parses, and parsing drops nothing (zod strips unknown keys,
 * so an equal result means the payload has no field the contract does not name).
 */
export function conforms(schema: ZodType, payload: unknown): string | undefined {
  const parsed = schema.safeParse(payload);
  if (!parsed.success) return parsed.error.message;
  if (JSON.stringify(parsed.data) !== JSON.stringify(payload))
    return 'payload has fields the schema does not name';
  return undefined;
}

export function connectDashboard(port: number, transports: Array<'polling' | 'websocket'>): DashboardClient {
  const socket: Socket<ServerToClientEvents> = io(`http://127.0.0.1:${port}`, {
    path: '/socket.io',
    transports,
    reconnection: false,
    forceNew: true,
  });
  const deltas: DashboardDelta[] = [];
  const names: string[] = [];
  const violations: string[] = [];
  const waiters = new Set<() => void>();
  socket.onAny((name: string, payload: unknown) => {
    names.push(name);
    const schema = (DashboardEvents as Record<string, ZodType>)[name];
    const problem = schema ? conforms(schema, payload) : `unknown event ${name}`;
    if (problem) violations.push(`${name}: ${problem}`);
    if (name === 'delta') {
      deltas.push(payload as DashboardDelta);
      for (const w of waiters) w();
    }
  });
  const snapshot = new Promise<DashboardSnapshot>((resolve, reject) => {
    socket.once('snapshot', (s) => resolve(DashboardSnapshot.parse(s)));
    socket.once('connect_error', reject);
  });
  return {
    socket,
    snapshot,
    deltas,
    names,
    violations,
    until(check, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const probe = (): void => {
          const found = deltas.find(check);
          if (!found) return;
          waiters.delete(probe);
          clearTimeout(timer);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(probe);
          reject(new Error(`no matching delta in ${timeoutMs} ms (${deltas.length} deltas)`));
        }, timeoutMs);
        waiters.add(probe);
        probe();
      });
    },
    close() {
      socket.close();
    },
  };
}
