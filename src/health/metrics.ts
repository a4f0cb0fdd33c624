/**
 * Prometheus metrics of a node (prom-client), in a per-node `Registry` — never the global one,
 * so several nodes in one process (tests, demo, benchmarks) do not mix their series.
 *
 * Gauges are read from the channels' snapshots at scrape time (nothing runs between scrapes);
 * counters follow the channel and health events.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { Observable, Subscription } from 'rxjs';
import { SyncOutcome } from '../protocol/sync-frames.js';
import type { CountedChannel } from './channel-ports.js';
import type { HealthMonitor } from './health-monitor.js';
import { HEALTH_STATES, type HealthEventKind } from './status.js';

/**
 * Every kind of health event, so that each `parley_health_events_total` series exists from 0
 * (an alert on `increase()` fires on the first event, not the second). The `Record` makes a
 * kind added to `HealthEvent` a type error here until it is listed.
 */
const HEALTH_EVENT_KINDS = Object.keys({
  transition: true,
  epoch_seen: true,
  peer_state_lost: true,
  zombie_refused: true,
  epoch_reset: true,
  diverged: true,
  converged: true,
  peer_behind: true,
  peer_behind_cleared: true,
  backoffice_unreachable: true,
  backoffice_reachable: true,
  events_undeliverable: true,
  events_deliverable: true,
  command_abandoned: true,
  heartbeat_refused: true,
} satisfies Record<HealthEventKind, true>) as HealthEventKind[];

/** A resync event (`ResyncEvent` of `src/sync`): its type, peer, and the outcome of a finished run. */
export interface ResyncRunEvent {
  type: string;
  peer: string;
  outcome?: SyncOutcome | undefined;
}

/** A restore event (`RestoreEvent` of `src/sync`): who, which side, where it is, what it moved. */
export interface RestoreProgressEvent {
  type: string;
  peer: string;
  role: string;
  state: string;
  movedNow: number;
}

/** The metrics of one node. */
export interface NodeMetrics {
  readonly registry: Registry;
  /** The exposition text (`/metrics` body). */
  metrics(): Promise<string>;
  /** The `content-type` of {@link NodeMetrics.metrics}. */
  readonly contentType: string;
  /** Stops following events. Idempotent. */
  close(): void;
}

/** Labels of every node metric (a node has one registry; `node` tells nodes apart when scraped together). */
export interface NodeMetricsDeps {
  /** This node's address (the `node` label). */
  node: string;
  monitor: HealthMonitor;
  channels: readonly CountedChannel[];
  /**
   * The operator's name of each peer (config `peers[].name`), by address: every per-peer series
   * carries it as `peer_name` (the address when a peer has no name).
   */
  peerNames?: ReadonlyMap<string, string>;
  /** The resync events: each `resync_finished` counts in `parley_resync_runs_total`. */
  resync$?: Observable<ResyncRunEvent>;
  /**
   * The closed-object restore events: objects moved count in `parley_restore_objects_total`;
   * `parley_restore_in_progress` is 1 while a restore of the channel runs.
   */
  restore$?: Observable<RestoreProgressEvent>;
}

export function createNodeMetrics(deps: NodeMetricsDeps): NodeMetrics {
  const { monitor, channels } = deps;
  const registry = new Registry();
  registry.setDefaultLabels({ node: deps.node });
  const registers = [registry];
  const who = (peer: string) => ({ peer, peer_name: deps.peerNames?.get(peer) ?? peer });

  registerGauges(registers, deps, who);

  const retransmits = new Counter({
    name: 'parley_channel_retransmits_total',
    help: 'Command retransmissions',
    labelNames: ['peer', 'peer_name'],
    registers,
  });
  const commits = new Counter({
    name: 'parley_channel_commits_total',
    help: 'Commands committed with their final outcome: outbound = proposed by this node, inbound = by the peer',
    labelNames: ['peer', 'peer_name', 'direction', 'status'],
    registers,
  });
  const healthEvents = new Counter({
    name: 'parley_health_events_total',
    help: 'Health events by kind (transition, peer_state_lost, diverged, peer_behind, command_abandoned, …)',
    labelNames: ['peer', 'peer_name', 'kind'],
    registers,
  });
  const transitions = new Counter({
    name: 'parley_health_transitions_total',
    help: 'Health state changes, by the state entered',
    labelNames: ['peer', 'peer_name', 'to'],
    registers,
  });

  const resyncRuns = new Counter({
    name: 'parley_resync_runs_total',
    help: 'Resync runs ended, by outcome (in_sync, repaired, partial, failed, aborted)',
    labelNames: ['peer', 'peer_name', 'outcome'],
    registers,
  });

  const restoreObjects = new Counter({
    name: 'parley_restore_objects_total',
    help: 'Objects a closed-object restore moved: leader = pushed to or fetched from the peer, follower = stored here from the peer',
    labelNames: ['peer', 'peer_name', 'role'],
    registers,
  });
  const restoreRunning = new Gauge({
    name: 'parley_restore_in_progress',
    help: '1 while a closed-object restore of the channel runs (led here or by the peer), else 0',
    labelNames: ['peer', 'peer_name'],
    registers,
  });

  const subs: Subscription[] = [];
  for (const channel of channels) {
    const labels = who(channel.peer);
    // Every series exists from the start, at 0: `increase()` sees the first event.
    retransmits.inc(labels, 0);
    for (const direction of ['outbound', 'inbound']) {
      for (const status of ['success', 'failure']) commits.inc({ ...labels, direction, status }, 0);
    }
    for (const kind of HEALTH_EVENT_KINDS) healthEvents.inc({ ...labels, kind }, 0);
    for (const to of HEALTH_STATES) transitions.inc({ ...labels, to }, 0);
    for (const outcome of SyncOutcome.options) resyncRuns.inc({ ...labels, outcome }, 0);
    for (const role of ['leader', 'follower']) restoreObjects.inc({ ...labels, role }, 0);
    restoreRunning.set(labels, 0);
    subs.push(
      channel.events$.subscribe((event) => {
        if (event.type === 'retransmit') retransmits.inc(labels);
        else if (event.type === 'command_final')
          commits.inc({ ...labels, direction: 'outbound', status: event.status });
        else if (event.type === 'command_received') {
          commits.inc({ ...labels, direction: 'inbound', status: event.status });
        }
      }),
    );
  }
  subs.push(
    monitor.health$.subscribe((event) => {
      // A zombie_refused record carries the refusals held back since the previous one.
      const count = event.kind === 'zombie_refused' ? 1 + event.suppressed : 1;
      const labels = who(event.peer);
      healthEvents.inc({ ...labels, kind: event.kind }, count);
      if (event.kind === 'transition') transitions.inc({ ...labels, to: event.to });
    }),
  );
  if (deps.resync$) {
    subs.push(
      deps.resync$.subscribe((e) => {
        if (e.type === 'resync_finished' && e.outcome) resyncRuns.inc({ ...who(e.peer), outcome: e.outcome });
      }),
    );
  }

  if (deps.restore$) {
    subs.push(
      deps.restore$.subscribe((e) => {
        if (e.movedNow > 0) restoreObjects.inc({ ...who(e.peer), role: e.role }, e.movedNow);
        restoreRunning.set(who(e.peer), e.state === 'running' ? 1 : 0);
      }),
    );
  }

  return {
    registry,
    metrics: () => registry.metrics(),
    contentType: registry.contentType,
    close() {
      for (const s of subs) s.unsubscribe();
      subs.length = 0;
    },
  };
}

/** The gauges, read from the monitor's snapshots at scrape time. */
function registerGauges(
  registers: Registry[],
  deps: NodeMetricsDeps,
  who: (peer: string) => { peer: string; peer_name: string },
): void {
  const { monitor } = deps;
  const snapshots = () => monitor.snapshot();
  new Gauge({
    name: 'parley_channel_health_state',
    help: 'Health state of the channel (1 for the current state): unknown, healthy, suspect, down',
    labelNames: ['peer', 'peer_name', 'state'],
    registers,
    collect() {
      this.reset();
      for (const s of snapshots()) {
        for (const state of HEALTH_STATES) this.set({ ...who(s.peer), state }, s.state === state ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: 'parley_channel_connected',
    help: 'Whether an authenticated connection to the peer is live',
    labelNames: ['peer', 'peer_name'],
    registers,
    collect() {
      this.reset();
      for (const s of snapshots()) this.set(who(s.peer), s.connected ? 1 : 0);
    },
  });
  new Gauge({
    name: 'parley_channel_phi',
    help: 'Phi accrual suspicion level of the peer (0 = heartbeat just arrived)',
    labelNames: ['peer', 'peer_name'],
    registers,
    collect() {
      this.reset();
      for (const s of snapshots()) this.set(who(s.peer), s.phi);
    },
  });
  new Gauge({
    name: 'parley_heartbeat_rtt_seconds',
    help: 'Last heartbeat round-trip time',
    labelNames: ['peer', 'peer_name'],
    registers,
    collect() {
      this.reset();
      for (const s of snapshots()) if (s.rttMs !== null) this.set(who(s.peer), s.rttMs / 1000);
    },
  });
  new Gauge({
    name: 'parley_heartbeat_srtt_seconds',
    help: 'Smoothed heartbeat round-trip time (EWMA, 1/8)',
    labelNames: ['peer', 'peer_name'],
    registers,
    collect() {
      this.reset();
      for (const s of snapshots()) if (s.srttMs !== null) this.set(who(s.peer), s.srttMs / 1000);
    },
  });
  new Gauge({
    name: 'parley_heartbeat_silence_seconds',
    help: 'Time since the last heartbeat from the peer',
    labelNames: ['peer', 'peer_name'],
    registers,
    collect() {
      this.reset();
      for (const s of snapshots()) if (s.silentMs !== null) this.set(who(s.peer), s.silentMs / 1000);
    },
  });
  new Counter({
    name: 'parley_heartbeats_sent_total',
    help: 'Heartbeats sent to the peer',
    labelNames: ['peer', 'peer_name'],
    registers,
    collect() {
      this.reset();
      for (const s of snapshots()) this.inc(who(s.peer), s.heartbeatsSent);
    },
  });
  new Counter({
    name: 'parley_heartbeats_received_total',
    help: 'Heartbeats received from the peer (MAC verified)',
    labelNames: ['peer', 'peer_name'],
    registers,
    collect() {
      this.reset();
      for (const s of snapshots()) this.inc(who(s.peer), s.heartbeatsReceived);
    },
  });
  new Gauge({
    name: 'parley_channel_open_objects',
    help: 'Open objects shared with the peer: as this node holds them (local) and as the peer announced (remote)',
    labelNames: ['peer', 'peer_name', 'side'],
    registers,
    collect() {
      this.reset();
      for (const s of snapshots()) {
        this.set({ ...who(s.peer), side: 'local' }, s.local.count);
        if (s.remote) this.set({ ...who(s.peer), side: 'remote' }, s.remote.count);
      }
    },
  });
  new Gauge({
    name: 'parley_channel_inflight_commands',
    help: 'Commands without a final response: proposed by this node (local), as the peer announced its own (remote)',
    labelNames: ['peer', 'peer_name', 'side'],
    registers,
    collect() {
      this.reset();
      for (const s of snapshots()) {
        this.set({ ...who(s.peer), side: 'local' }, s.localInflight);
        if (s.remoteInflight !== null) this.set({ ...who(s.peer), side: 'remote' }, s.remoteInflight);
      }
    },
  });
  registerInflightGauges(registers, deps, who);
  new Gauge({
    name: 'parley_channel_diverged',
    help: 'Whether the open-object digests stayed different while no command was in flight',
    labelNames: ['peer', 'peer_name'],
    registers,
    collect() {
      this.reset();
      for (const s of snapshots()) this.set(who(s.peer), s.diverged ? 1 : 0);
    },
  });
  registerConditionGauges(registers, deps, who);
}

/** The gauges of my commands in flight, by where each stands (`Channel.inflightStates`). */
function registerInflightGauges(
  registers: Registry[],
  deps: NodeMetricsDeps,
  who: (peer: string) => { peer: string; peer_name: string },
): void {
  new Gauge({
    name: 'parley_channel_inflight_commands_by_state',
    help: 'Commands of mine in flight by where they stand: unsent (no connection since queued), unanswered (written, no answer since), waiting (the peer answered wait), unapplied (answered, but the answer could not end it here: a fork or a command already final)',
    labelNames: ['peer', 'peer_name', 'state'],
    registers,
    collect() {
      this.reset();
      for (const channel of deps.channels) {
        const states = channel.inflightStates;
        if (states === undefined) continue;
        for (const state of ['unsent', 'unanswered', 'waiting', 'unapplied'] as const) {
          this.set({ ...who(channel.peer), state }, states[state]);
        }
      }
    },
  });
  new Gauge({
    name: 'parley_channel_oldest_unanswered_seconds',
    help: 'How long the oldest command of mine written and unanswered has waited for its answer (0 when none)',
    labelNames: ['peer', 'peer_name'],
    registers,
    collect() {
      this.reset();
      for (const channel of deps.channels) {
        const states = channel.inflightStates;
        if (states !== undefined) this.set(who(channel.peer), (states.oldestUnansweredMs ?? 0) / 1000);
      }
    },
  });
}

/** The gauges of the conditions: peer behind, stuck commands, health persistence. */
function registerConditionGauges(
  registers: Registry[],
  deps: NodeMetricsDeps,
  who: (peer: string) => { peer: string; peer_name: string },
): void {
  const { monitor, channels } = deps;
  new Gauge({
    name: 'parley_channel_peer_behind',
    help: 'Whether the peer is peer_behind: commands of this node stuck there (answered wait, no resync helps)',
    labelNames: ['peer', 'peer_name'],
    registers,
    collect() {
      this.reset();
      const behind = new Map(monitor.peerBehind.snapshot().map((b) => [b.peer, b.commands]));
      for (const channel of channels) this.set(who(channel.peer), behind.has(channel.peer) ? 1 : 0);
    },
  });
  new Gauge({
    name: 'parley_channel_backoffice_unreachable',
    help: 'Whether payments on this channel wait for a back office that does not answer (webhook business)',
    labelNames: ['peer', 'peer_name'],
    registers,
    collect() {
      this.reset();
      const waiting = new Set((monitor.backoffice?.snapshot() ?? []).map((b) => b.peer));
      for (const channel of channels) this.set(who(channel.peer), waiting.has(channel.peer) ? 1 : 0);
    },
  });
  new Gauge({
    name: 'parley_events_undeliverable',
    help: 'Whether the back-office events stopped moving: their receiver refused the last deliveries in a row (events_undeliverable)',
    registers,
    collect() {
      this.set((monitor.eventsDelivery?.snapshot().length ?? 0) > 0 ? 1 : 0);
    },
  });
  new Gauge({
    name: 'parley_channel_stuck_commands',
    help: 'Commands of this node stuck at a peer_behind peer (until final or abandoned)',
    labelNames: ['peer', 'peer_name'],
    registers,
    collect() {
      this.reset();
      const behind = new Map(monitor.peerBehind.snapshot().map((b) => [b.peer, b.commands]));
      for (const channel of channels) this.set(who(channel.peer), behind.get(channel.peer) ?? 0);
    },
  });
  new Gauge({
    name: 'parley_health_persist_failures',
    help: 'Health events that could not be written to the store',
    registers,
    collect() {
      this.set(monitor.persistFailures);
    },
  });
}
