export * from './errors.js';
export * from './define.js';
export * from './common.js';
export * from './events.js';
