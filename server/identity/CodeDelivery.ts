/** One code to deliver. `to` is E.164; `locale` picks the message language. */
export interface CodeMessage {
  to: string;
  channel: 'sms' | 'voice';
  code: string;
  locale: string;
}

/**
 * How one-time codes reach a phone. Two real implementations: `log`
 * (development only) and `webhook` (an SMS/voice gateway behind HTTP).
 * `send` resolves once the provider accepted the message and rejects with
 * CodeDeliveryError otherwise; `close` abandons in-flight sends (idempotent).
 */
export interface CodeDelivery {
  readonly name: 'log' | 'webhook';
  send(message: CodeMessage): Promise<void>;
  close(): void;
}

export class CodeDeliveryError extends Error {
  constructor(message: string, readonly attempts: number) {
    super(message);
    this.name = 'CodeDeliveryError';
  }
}

/** Masks a number for logs and errors: country code and last two digits only. */
export function maskNumber(e164: string): string {
  return `${e164.slice(0, 3)}${'*'.repeat(Math.max(0, e164.length - 5))}${e164.slice(-2)}`;
}
