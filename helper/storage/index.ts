export * from './direct-storage.js';
export * from './errors.js';
export type { StorageInfo } from './io-messages.js';
export { deviceNumber } from './sysfs.js';
