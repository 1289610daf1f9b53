export * from './clock.js';
export * from './engine-driver.js';
export * from './lockspace.js';
export * from './resource.js';
export * from './ballot-floor-file.js';
