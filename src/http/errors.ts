/**
 * Errors of the HTTP API: every failure is `{ "error": { "code": "ERR_…", "message": "…" } }` with a
 * stable code (clients and tests match the code, never the message) and an HTTP status derived from
 * it. The codes are those of the core (src/errors.ts) plus a few that only HTTP needs.
 */
import { SwarmError, errorCode, type ErrorCode } from '../errors.js';

/** Codes only the HTTP layer produces. */
export type HttpOnlyErrorCode =
  | 'ERR_BAD_HOST' // the Host header names a host this server does not answer to (DNS rebinding)
  | 'ERR_FORBIDDEN_ORIGIN' // a state-changing request from another site
  | 'ERR_UNAUTHORIZED' // no token, or a wrong one, where one is required
  | 'ERR_UNSUPPORTED_MEDIA_TYPE'
  | 'ERR_PAYLOAD_TOO_LARGE'
  | 'ERR_INTERNAL';

export type HttpErrorCode = ErrorCode | HttpOnlyErrorCode;

/** The body of every error response. */
export interface ErrorBody {
  error: { code: string; message: string };
}

/** JSON schema of ErrorBody, for route schemas (and so for the OpenAPI document). */
export const errorBodySchema = {
  type: 'object',
  description: 'An error: a stable code and a message for people.',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', pattern: '^ERR_[A-Z_]+$', examples: ['ERR_NOT_FOUND'] },
        message: { type: 'string' },
      },
    },
  },
} as const;

/** An error the API answers with: its code, its status, a message for people. */
export class HttpError extends Error {
  readonly code: HttpErrorCode;
  readonly statusCode: number;

  constructor(code: HttpErrorCode, message: string, statusCode: number = statusFor(code)) {
    super(message);
    this.name = 'HttpError';
    this.code = code;
    this.statusCode = statusCode;
  }
}

const STATUS: Partial<Record<HttpErrorCode, number>> = {
  ERR_INVALID_ARGUMENT: 400,
  ERR_BAD_NAME: 400,
  ERR_OUTSIDE_DIR: 400,
  ERR_BAD_MANIFEST: 400,
  ERR_UNAUTHORIZED: 401,
  ERR_FORBIDDEN_ORIGIN: 403,
  ERR_NOT_FOUND: 404,
  ERR_UNKNOWN_FILE: 404,
  ERR_AMBIGUOUS_NAME: 409,
  ERR_CANCELLED: 409,
  ERR_IN_PROGRESS: 409,
  ERR_PAYLOAD_TOO_LARGE: 413,
  ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  ERR_BAD_HOST: 421,
  ERR_LIMIT: 429,
  ERR_RATE_LIMITED: 429,
  ERR_UNREACHABLE: 502,
  ERR_NO_SOURCES: 502,
  ERR_TIMEOUT: 504,
};

/** The HTTP status a code is answered with; 500 for codes that mean the server failed. */
export function statusFor(code: HttpErrorCode): number {
  return STATUS[code] ?? 500;
}

/** Fastify's own client errors, by their code, as ours. */
const FASTIFY_CODES: Record<string, HttpErrorCode> = {
  FST_ERR_VALIDATION: 'ERR_INVALID_ARGUMENT',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'ERR_INVALID_ARGUMENT',
  FST_ERR_CTP_INVALID_JSON_BODY: 'ERR_INVALID_ARGUMENT',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'ERR_INVALID_ARGUMENT',
  FST_ERR_CTP_BODY_TOO_LARGE: 'ERR_PAYLOAD_TOO_LARGE',
};

/**
 * Any thrown value as what the API answers: our errors keep their code and message, client errors
 * from the framework get a code of ours, anything else is an internal error whose details stay in
 * the log (`internal` is true then).
 */
export function toErrorResponse(err: unknown): { status: number; body: ErrorBody; internal: boolean } {
  if (err instanceof HttpError) return response(err.statusCode, err.code, err.message);
  if (err instanceof SwarmError) return response(statusFor(err.code), err.code, err.message);
  const code = errorCode(err);
  const mapped = code ? FASTIFY_CODES[code] : undefined;
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  if (mapped) return response(statusFor(mapped), mapped, (err as Error).message);
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return response(status, 'ERR_INVALID_ARGUMENT', (err as Error).message);
  }
  return { ...response(500, 'ERR_INTERNAL', 'the server failed to answer this request'), internal: true };
}

function response(
  status: number,
  code: string,
  message: string,
): { status: number; body: ErrorBody; internal: boolean } {
  return { status, body: { error: { code, message } }, internal: false };
}
