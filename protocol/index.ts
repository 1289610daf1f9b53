/**
 * Everything a supervisor or a tool needs from the wire contract. Deliberately
 * NOT re-exported: incarnation-key.ts (libsodium, helper only). The supervisor
 * runs under `node --jitless`, where loading libsodium crashes it; the helper
 * imports incarnation-key.js by its own path.
 */
export * from './errors.js';
export * from './limits.js';
export * from './frame.js';
export * from './statements.js';
export * from './supervisor-requests.js';
export * from './helper-messages.js';
export * from './request-sequence.js';
export * from './statement-sequence.js';
export * from './statement-verifier.js';
export * from './public-key-file.js';
