export * from './area.js';
export * from './delta-record.js';
export * from './errors.js';
export * from './fields.js';
export * from './header.js';
export * from './host-block.js';
export * from './layout.js';
export * from './leader-record.js';
