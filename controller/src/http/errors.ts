import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isPerchError, PerchError, type ErrorCode } from '@perch/shared';
import type { ControllerMetrics } from '../metrics';
import type { Logger } from '@perch/shared';

/** Maps anything thrown in a handler to `{error: {code, message}}`; never leaks a stack. */
export function toPerchError(err: unknown): PerchError {
  if (isPerchError(err)) return err;
  const e = err as Partial<FastifyError> & { validation?: unknown[]; message?: string };
  if (e && typeof e === 'object') {
    if (Array.isArray(e.validation)) {
      return new PerchError(
        'E_SCHEMA',
        `request ${e.validationContext ?? 'body'} ${e.message ?? 'is invalid'}`.slice(0, 500),
      );
    }
    const code = e.code;
    if (code === 'FST_REQ_FILE_TOO_LARGE') {
      return new PerchError('E_MODEL_TOO_LARGE', 'an uploaded file is larger than the limit');
    }
    if (
      code === 'FST_ERR_CTP_BODY_TOO_LARGE' ||
      code === 'FST_PARTS_LIMIT' ||
      code === 'FST_FILES_LIMIT' ||
      code === 'FST_FIELDS_LIMIT'
    ) {
      return new PerchError('E_PAYLOAD_TOO_LARGE', 'request body is too large');
    }
    if (code === 'FST_ERR_CTP_INVALID_JSON_BODY' || code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
      return new PerchError('E_PAYLOAD_JSON', 'request body is not valid JSON');
    }
    if (
      typeof e.message === 'string' &&
      /prototype|__proto__/i.test(e.message) &&
      (e.statusCode ?? 500) < 500
    ) {
      return new PerchError('E_PAYLOAD_FORBIDDEN_KEY', 'request body contains a forbidden key');
    }
    if (e.name === 'SyntaxError' || (typeof code === 'string' && code.startsWith('FST_ERR_CTP'))) {
      return new PerchError('E_HTTP_BAD_REQUEST', 'request body or content type is not acceptable');
    }
    if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
      return new PerchError('E_HTTP_BAD_REQUEST', 'bad request');
    }
  }
  return new PerchError('E_INTERNAL', 'internal error');
}

export function sendError(reply: FastifyReply, error: PerchError, metrics: ControllerMetrics): FastifyReply {
  metrics.httpRejects.inc({ code: error.code });
  const body: { error: { code: ErrorCode; message: string; details?: unknown } } = {
    error: { code: error.code, message: error.message },
  };
  if (error.details !== undefined && error.code !== 'E_INTERNAL') body.error.details = error.details;
  return reply.code(error.httpStatus).type('application/json').send(body);
}

export function installErrorHandling(app: FastifyInstance, metrics: ControllerMetrics, logger: Logger): void {
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const perr = toPerchError(err);
    const log = request.logger ?? logger;
    if (perr.code === 'E_INTERNAL') {
      log.error('request failed', {
        reqId: request.id,
        url: request.url,
        err: err instanceof Error ? err.stack : String(err),
      });
    } else {
      log.debug('request refused', { reqId: request.id, code: perr.code });
    }
    return sendError(reply, perr, metrics);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(
      reply,
      new PerchError('E_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]?.slice(0, 200)}`),
      metrics,
    ),
  );
}
