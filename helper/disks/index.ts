export * from './block-identities.js';
export * from './errors.js';
export * from './facts-fs.js';
export * from './gather-facts.js';
export * from './stuck-calls.js';
