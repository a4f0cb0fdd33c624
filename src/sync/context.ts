/**
 * What the parts of one channel's resync share: its limits (from the options), its collaborators,
 * the correlator, the run records, and the live link and closed state.
 */
import type { SchedulerLike, Subject } from 'rxjs';
import type { OpenObjectsSummary } from '../protocol/channel-frames.js';
import type { ApplyDeps } from './apply.js';
import type { Correlator } from './correlator.js';
import type { HistorySides } from './histories.js';
import type { SyncStore } from './ports.js';
import type { RestoreTracker } from './restore-tracker.js';
import type { RunRecords } from './run-record.js';
import type { RunReporter } from './run-report.js';
import { DEFAULT_SYNC_PAGE_SIZE } from './summary.js';
import type { ChannelSyncDeps, ChannelSyncOptions, ResyncEvent, SyncLink } from './types.js';

/**
 * Default budget of one history frame's JSON. Frames stay below 128 KiB (base64url adds a third):
 * V8 allocates larger strings one by one in their own pages, and on a virtual machine whose page
 * faults are slow, much larger frames cost both sides' main threads a good share of a rebuild
 * (docs/benchmarks.md). A push is sent in as many frames as it needs and answered as one.
 */
const DEFAULT_MAX_BATCH_BYTES = 90_000;

/** The options with their defaults, and what follows from them. */
export interface SyncLimits {
  pageSize: number;
  batchObjects: number;
  maxFrameBytes: number;
  /** The largest history of one object that fits in a frame of `maxFrameBytes`. */
  maxObjectBytes: number;
  maxBatchBytes: number;
  window: number;
  maxPushHoldBytes: number;
  responseTimeoutMs: number;
}

export function syncLimits(options: ChannelSyncOptions): SyncLimits {
  const maxFrameBytes = options.maxFrameBytes ?? 1024 * 1024;
  // A frame is the base64url of its JSON (4/3) plus the JWS header, signature and envelope.
  const maxObjectBytes = Math.floor(((maxFrameBytes - 1024) * 3) / 4);
  return {
    pageSize: options.pageSize ?? DEFAULT_SYNC_PAGE_SIZE,
    batchObjects: options.batchObjects ?? 200,
    maxFrameBytes,
    maxObjectBytes,
    maxBatchBytes: Math.min(options.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES, maxObjectBytes),
    window: options.window ?? 4,
    maxPushHoldBytes: options.maxPushHoldBytes ?? 32 * 1024 * 1024,
    responseTimeoutMs: options.responseTimeoutMs ?? 30_000,
  };
}

export interface SyncContext {
  peer: string;
  store: SyncStore;
  deps: ChannelSyncDeps;
  options: ChannelSyncOptions;
  limits: SyncLimits;
  scheduler: SchedulerLike;
  sides: HistorySides;
  applyDeps: ApplyDeps;
  events: Subject<ResyncEvent>;
  correlator: Correlator;
  runs: RunRecords;
  reporter: RunReporter;
  /** Where the channel's closed-object restore is (PROTOCOL.md §7.6). */
  restore: RestoreTracker;
  /** This node's open-object summary with the peer. */
  summary(): Promise<OpenObjectsSummary>;
  /** The live link, if any. */
  link(): SyncLink | undefined;
  closed(): boolean;
  /** Resolves when `close()` starts. */
  whenClosed: Promise<void>;
  /** The channel's counter of push `seq`s and request ids. */
  nextSeq(): number;
}
