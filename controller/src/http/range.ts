import { createReadStream } from 'node:fs';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PerchError } from '@perch/shared';

/** Parses a single `bytes=a-b` / `bytes=a-` / `bytes=-n` range; multi-ranges are served whole. */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'none' | 'invalid' {
  if (header === undefined) return 'none';
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return 'none';
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return 'invalid';
  let start: number;
  let end: number;
  if (a === '') {
    const n = Number(b);
    if (n === 0) return 'invalid';
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  }
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start > end || start >= size)
    return 'invalid';
  return { start, end };
}

/** Sends a file with a strong ETag, If-None-Match, and single byte ranges (If-Range honoured). */
export function sendFile(
  request: FastifyRequest,
  reply: FastifyReply,
  file: string,
  size: number,
  etag: string,
  contentType: string,
): FastifyReply {
  const quoted = `"${etag}"`;
  reply.header('ETag', quoted).header('Accept-Ranges', 'bytes').type(contentType);
  if (request.headers['if-none-match'] === quoted) return reply.code(304).send();
  const ifRange = request.headers['if-range'];
  const range =
    ifRange !== undefined && ifRange !== quoted ? 'none' : parseRange(request.headers.range, size);
  if (range === 'invalid') {
    reply.header('Content-Range', `bytes */${size}`);
    throw new PerchError('E_RANGE_NOT_SATISFIABLE', 'requested range is outside the file');
  }
  if (range === 'none') {
    reply.header('Content-Length', String(size));
    return reply.code(200).send(createReadStream(file));
  }
  reply
    .header('Content-Range', `bytes ${range.start}-${range.end}/${size}`)
    .header('Content-Length', String(range.end - range.start + 1));
  return reply.code(206).send(createReadStream(file, { start: range.start, end: range.end }));
}
