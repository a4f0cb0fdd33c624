/**
 * The public API of the `parley` package: `import { createVaspNode } from 'parley'`.
 * Re-exports only; each name lives in the folder of its concept.
 */
export * from './business/index.js';
export type { NodeConfig, NodeConfigInput, PeerConfig } from './config.js';
export { loadNodeConfig, parseNodeConfig } from './config.js';
export { ErrorCode, isParleyError, ParleyError } from './errors.js';
export type {
  BackgroundFailed,
  ChannelSnapshot,
  NodeDeps,
  NodeEvent,
  PayInput,
  TransportEvent,
  UpkeepEvent,
  VaspNode,
} from './node.js';
export { createVaspNode } from './node.js';
