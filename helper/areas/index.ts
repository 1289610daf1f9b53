export * from './area-reader.js';
export * from './area-writer.js';
