import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../context';
import { enrollDevice, type EnrollRequest } from '../enrollment';
import { idParam, security, withErrors } from '../http/schemas';

/** `POST /enroll`: public; the enrollment token travels in the body. Contract in controller/README.md. */
export const enrollRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  app.post<{ Body: EnrollRequest }>(
    '/enroll',
    {
      config: { access: 'public' },
      bodyLimit: 16 * 1024,
      schema: {
        summary: 'Enroll a device with a bootstrap token and proof of key possession',
        tags: ['enrollment'],
        security: security('public'),
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['token', 'publicKey', 'timestamp', 'proof'],
          properties: {
            token: { type: 'string', minLength: 8, maxLength: 200 },
            publicKey: { type: 'string', minLength: 40, maxLength: 4096 },
            timestamp: { type: 'string', minLength: 10, maxLength: 40 },
            proof: { type: 'string', minLength: 8, maxLength: 512 },
            name: idParam,
            hostname: { type: 'string', maxLength: 255 },
          },
        },
        response: withErrors({
          201: {
            type: 'object',
            required: ['deviceId', 'mqtt', 'tufRoot', 'controllerUrl', 'deviceToken'],
            properties: {
              deviceId: { type: 'string' },
              mqtt: {
                type: 'object',
                required: ['url', 'username', 'password', 'clientId', 'topicPrefix'],
                properties: {
                  url: { type: 'string' },
                  username: { type: 'string' },
                  password: { type: 'string' },
                  clientId: { type: 'string' },
                  topicPrefix: { type: 'string' },
                },
              },
              tufRoot: { type: 'object', additionalProperties: true },
              controllerUrl: { type: 'string' },
              deviceToken: { type: 'string' },
            },
          },
        }),
      },
    },
    async (request, reply) => reply.code(201).send(await enrollDevice(deps, request.body)),
  );
};
