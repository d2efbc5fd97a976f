import type { Logger } from '../../shared/runtime/log.js';
import { maskNumber, type CodeDelivery, type CodeMessage } from './CodeDelivery.js';

/**
 * Development provider: writes the code to the hub's log so a developer can
 * sign in without an SMS gateway. Refused at startup when NODE_ENV=production
 * (see createCodeDelivery). The number is masked even here.
 */
export class LogCodeDelivery implements CodeDelivery {
  readonly name = 'log' as const;
  readonly #log: Logger;
  #closed = false;

  constructor(log: Logger) {
    this.#log = log;
  }

  async send(message: CodeMessage): Promise<void> {
    if (this.#closed) throw new Error('code delivery is closed');
    // The message text carries the code on purpose: that is this provider's job.
    this.#log.warn({ channel: message.channel, locale: message.locale },
      `development sign-in code for ${maskNumber(message.to)}: ${message.code}`);
  }

  close(): void {
    this.#closed = true;
  }
}
