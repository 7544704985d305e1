/**
 * JSON schemas shared by the dashboards' routes. Route schemas do three jobs at once: they validate
 * requests, serialize responses (fields not in the schema are never sent), and are the source of
 * the OpenAPI document.
 */
import { errorBodySchema } from './errors.js';

/** A file id: 64 hex digits. */
export const fileIdSchema = {
  type: 'string',
  pattern: '^[0-9a-fA-F]{64}$',
  description: 'a file id: SHA-256 over the size, chunk size and chunk hashes, in hex',
} as const;

/** A peer id: 64 hex digits. */
export const peerIdSchema = {
  type: 'string',
  pattern: '^[0-9a-f]{64}$',
  description: 'a peer id, hex',
} as const;

/** A response schema with the description the OpenAPI document gives it. */
export function described<S extends object>(description: string, schema: S): S & { description: string } {
  return { ...schema, description };
}

/** Every route answers errors the same way. */
export const errorResponses = {
  '4xx': { ...errorBodySchema, description: 'The request was refused: see the error code.' },
  '5xx': { ...errorBodySchema, description: 'The server failed.' },
} as const;

export const fileIdParams = {
  type: 'object',
  required: ['id'],
  properties: { id: fileIdSchema },
} as const;

/** `limit` of a listing: how many items at most. */
export function limitSchema(defaultLimit: number, max: number) {
  return { type: 'integer', minimum: 1, maximum: max, default: defaultLimit } as const;
}

/** A page of a listing: `total`, how many there are, and at most `limit` of them under `key`. */
export function listingSchema(key: string, items: object, total: object = { type: 'integer' }) {
  return {
    type: 'object',
    required: ['total', key],
    properties: { total, [key]: { type: 'array', items } },
  } as const;
}

/** The query of a search: a part of a file name, case-insensitive; empty matches everything. */
export const searchQuerySchema = {
  type: 'string',
  maxLength: 255,
  default: '',
  description: 'part of a file name (case-insensitive); empty: everything',
} as const;

/** An ISO 8601 timestamp. */
export const timestampSchema = { type: 'string', format: 'date-time' } as const;

/** The schema of a route whose response is a server-sent event stream. */
export function eventStreamResponse(description: string) {
  return {
    200: {
      description,
      content: { 'text/event-stream': { schema: { type: 'string' } } },
    },
    ...errorResponses,
  } as const;
}
