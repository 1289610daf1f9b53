export * from './errors.js';
export * from './pet-policy.js';
export * from './watchdog.js';
export * from './watchdog-emulator.js';
export * from './suspend-detector.js';
