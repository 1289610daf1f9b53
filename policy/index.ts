export * from './host-policy.js';
