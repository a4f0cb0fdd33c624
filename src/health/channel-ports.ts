/**
 * What the health module reads and does of a channel: each user names the few members it needs,
 * so none of them holds the whole `Channel` or `ChannelCore` (the composition root passes the
 * real ones; tests pass what they need).
 */
import type { Channel } from '../channel/channel.js';
import type { ChannelCore } from '../channel/channel-core.js';

/** A channel the health monitor watches: heartbeats go out on each connection it attaches. */
export type MonitoredChannel = Pick<Channel, 'peer' | 'inflight' | 'connection' | 'events$'>;

/** The open-object summary that heartbeats announce (`ChannelCore.openSummary`). */
export type SummarySource = Pick<ChannelCore, 'openSummary'>;

/** A channel whose commands the metrics count (and whose in-flight commands they sort by state). */
export type CountedChannel = Pick<Channel, 'peer' | 'events$'> & Partial<Pick<Channel, 'inflightStates'>>;

/** What abandoning a command needs of the channel that holds it. */
export type AbandonChannel = Pick<Channel, 'peer' | 'suspended' | 'abandon'>;

/** What abandoning a command needs of the core that holds it. */
export type AbandonCore = Pick<ChannelCore, 'isPending' | 'exclusive' | 'dropPending'>;
