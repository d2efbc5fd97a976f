import { expect } from 'chai';
import { ConfigError } from '../../shared/env.js';
import { loadHubConfig } from '../../server/config.js';
import { testHubEnv } from '../support/config.js';

describe('hub config', () => {
  it('applies documented defaults', () => {
    const cfg = loadHubConfig(testHubEnv('redis://127.0.0.1:1'));
    expect(cfg.CALL_RING_TIMEOUT_S).to.equal(60);
    expect(cfg.OTP_TTL_S).to.equal(300);
    expect(cfg.JWT_KEYS.get('k1')).to.be.a('string');
  });

  it('names every bad variable in the startup error', () => {
    const env = testHubEnv('redis://127.0.0.1:1', { HUB_PORT: 'eighty', JWT_KEYS: 'nocolon' });
    delete (env as Record<string, string | undefined>).RELAY_SECRET;
    try {
      loadHubConfig(env);
      expect.fail('should have thrown');
    } catch (err) {
      expect(err).to.be.instanceOf(ConfigError);
      const msg = (err as Error).message;
      expect(msg).to.contain('HUB_PORT');
      expect(msg).to.contain('JWT_KEYS');
      expect(msg).to.contain('RELAY_SECRET');
    }
  });

  it('treats empty values as unset', () => {
    const cfg = loadHubConfig(testHubEnv('redis://127.0.0.1:1', { LOG_LEVEL: '' }));
    expect(cfg.LOG_LEVEL).to.equal('info');
  });
});
