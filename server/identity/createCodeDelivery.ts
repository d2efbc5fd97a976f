import type { HubConfig } from '../config.js';
import type { Logger } from '../../shared/runtime/log.js';
import type { CodeDelivery } from './CodeDelivery.js';
import { LogCodeDelivery } from './LogCodeDelivery.js';
import { WebhookCodeDelivery } from './WebhookCodeDelivery.js';

/**
 * The configured code provider. Throws (the hub refuses to start) when the
 * development-only `log` provider is chosen in production, or when `webhook`
 * lacks its URL or secret.
 */
export function createCodeDelivery(config: HubConfig, log: Logger): CodeDelivery {
  if (config.OTP_PROVIDER === 'log') {
    if (config.NODE_ENV === 'production') {
      throw new TypeError('OTP_PROVIDER=log writes codes to the log and is refused when NODE_ENV=production; configure OTP_PROVIDER=webhook');
    }
    return new LogCodeDelivery(log);
  }
  if (!config.OTP_WEBHOOK_URL || !config.OTP_WEBHOOK_SECRET) {
    throw new TypeError('OTP_PROVIDER=webhook needs OTP_WEBHOOK_URL and OTP_WEBHOOK_SECRET');
  }
  return new WebhookCodeDelivery({
    url: config.OTP_WEBHOOK_URL,
    secret: config.OTP_WEBHOOK_SECRET,
    timeoutMs: config.OTP_WEBHOOK_TIMEOUT_MS,
    retries: config.OTP_WEBHOOK_RETRIES,
    log,
  });
}
