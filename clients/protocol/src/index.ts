/**
 * `@jamuna/protocol` — the one TypeScript client of Jamuna's REST and
 * WebSocket protocol, used by the chat widget and the dashboard.
 */
export * from './types';
export * from './storage';
export * from './session';
export * from './rest';
export * from './outbox';
export * from './backoff';
export * from './connection';
export * from './conversation';
export * from './typing';
export * from './attachments';
export { Emitter } from './emitter';
