import { controllerConfigSchema, startController } from '@perch/controller';
import { tempDir } from '../../helpers/tmp';
import { silentLogger, startDynsecMosquitto } from './harness';

jest.setTimeout(60_000);

describe('external broker mode', () => {
  it('fails start with E_BROKER_UNAVAILABLE when the broker refuses the controller credentials', async () => {
    const m = await startDynsecMosquitto();
    const { dir, cleanup } = tempDir('perch-ctl-ext-');
    try {
      const config = controllerConfigSchema.parse({
        home: dir,
        http: { host: '127.0.0.1', port: 0 },
        mqtt: { mode: 'external', url: m.broker.url, username: m.username, password: 'wrong-password' },
        limits: {},
        retention: {},
        tuf: {},
      });
      await expect(startController(config, { logger: silentLogger, cron: false })).rejects.toMatchObject({
        code: 'E_BROKER_UNAVAILABLE',
      });
    } finally {
      await m.broker.close();
      cleanup();
    }
  });
});
