export * from './auto-lease-file.js';
export * from './block-identities.js';
export * from './errors.js';
export * from './facts-fs.js';
export * from './gather-facts.js';
export * from './lease-directory.js';
export * from './link-into-place.js';
export * from './stuck-calls.js';
