export * from './direct-storage.js';
export * from './errors.js';
export type { StorageInfo } from './io-messages.js';
export { deviceNumber } from './sysfs.js';
export { SpinBackoff } from './spin-backoff.js';
export { STORAGE_TURN_US_MAX } from './loop-turn.js';
