import type { WrapperReply } from '../../core/protocol.js';

const REASONS: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  403: 'Forbidden',
  408: 'Request Timeout',
  413: 'Content Too Large',
  414: 'URI Too Long',
  431: 'Request Header Fields Too Large',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  505: 'HTTP Version Not Supported',
};

export type ErrorStatus = 400 | 403 | 408 | 413 | 414 | 431 | 501 | 502 | 503 | 505;

const cache = new Map<number, Buffer>();

/**
 * The wrapper's own answer: a small, valid HTTP/1.1 response that always
 * closes the connection (after a refusal the wrapper no longer knows, or
 * no longer trusts, where the client's next request would start).
 */
export function errorResponse(status: ErrorStatus): Buffer {
  let r = cache.get(status);
  if (!r) {
    const body = `${status} ${REASONS[status]}\n`;
    r = Buffer.from(
      `HTTP/1.1 ${status} ${REASONS[status]}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
      'latin1',
    );
    cache.set(status, r);
  }
  return r;
}

/** The wrapper's replies for its own events. */
export const WRAPPER_REPLIES: Readonly<Record<WrapperReply, ErrorStatus>> = {
  unavailable: 502,
  timeout: 408,
  too_many_violations: 400,
  shutdown: 503,
};
