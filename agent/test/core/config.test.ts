import { agentConfigSchema, loadAgentConfig } from '../../src/core/config';

describe('agent config: Home Assistant and MQTT 5 session keys', () => {
  it('defaults to discovery on under homeassistant, with the session defaults', () => {
    const c = agentConfigSchema.parse({});
    expect(c.homeAssistant).toEqual({ enabled: true, prefix: 'homeassistant', stateIntervalS: 15 });
    expect(c.mqtt).toMatchObject({ sessionExpiryS: 7 * 24 * 3600, willDelayS: 10 });
  });

  it('refuses a discovery prefix that is not a plain topic path, naming the key', () => {
    for (const prefix of ['ha/#', 'ha/+/x', '/ha', 'ha/', '']) {
      const r = agentConfigSchema.safeParse({ homeAssistant: { prefix } });
      expect([prefix, r.success]).toEqual([prefix, false]);
      expect(r.error?.issues[0]?.path).toEqual(['homeAssistant', 'prefix']);
    }
    expect(agentConfigSchema.parse({ homeAssistant: { prefix: 'ha/site-1' } }).homeAssistant.prefix).toBe(
      'ha/site-1',
    );
  });

  it('refuses unknown Home Assistant keys and out-of-range session values', () => {
    expect(agentConfigSchema.safeParse({ homeAssistant: { enable: false } }).success).toBe(false);
    expect(agentConfigSchema.safeParse({ mqtt: { willDelayS: -1 } }).success).toBe(false);
    expect(agentConfigSchema.safeParse({ mqtt: { sessionExpiryS: 2 ** 32 } }).success).toBe(false);
  });

  it('takes enabled and prefix from the environment', () => {
    const c = loadAgentConfig({
      env: { PERCH_HOME_ASSISTANT_ENABLED: 'false', PERCH_HOME_ASSISTANT_PREFIX: 'ha' },
    });
    expect(c.homeAssistant).toMatchObject({ enabled: false, prefix: 'ha' });
  });
});
