import { EventEmitter } from 'node:events';
import type { CallEndedFact } from './calls/CallEndedFact.js';

/**
 * In-process facts one subsystem announces and others react to, so the
 * subsystems do not import each other (calls -> CDR, identity -> contacts).
 * Cross-process delivery goes through Redis or the Socket.IO adapter instead.
 */
export interface HubEventMap {
  /** A call or conference leg ended; exactly once per call. */
  'call:ended': [CallEndedFact];
  /** A new account was created for a verified number. */
  'user:registered': [{ userId: string; phone: string; displayName: string | null }];
  /** An account was erased. */
  'user:deleted': [{ userId: string }];
}

export class HubEvents extends EventEmitter<HubEventMap> {}
