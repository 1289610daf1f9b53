export * from './config-error.js';
export * from './json-fields.js';
export * from './helper-config.js';
