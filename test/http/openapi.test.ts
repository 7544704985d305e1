/** The OpenAPI documents in docs/ are those the code generates (run `npm run openapi` after a change). */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { test } from 'node:test';
import { openApiDocuments } from '../../src/http/openapi-documents.js';

const DOCS = new URL('../../../docs/', import.meta.url);

test('docs/openapi-tracker.json and docs/openapi-peer.json are up to date', { timeout: 30_000 }, async () => {
  const documents = await openApiDocuments();
  for (const [name, generated] of Object.entries(documents)) {
    const file = new URL(`openapi-${name}.json`, DOCS);
    const committed = JSON.parse(await fs.readFile(file, 'utf8')) as unknown;
    assert.deepEqual(committed, generated, `docs/openapi-${name}.json is stale: run npm run openapi`);
    // Every operation says what it does, and answers errors as documented.
    const paths = (generated as { paths: Record<string, Record<string, Record<string, unknown>>> }).paths;
    for (const [route, operations] of Object.entries(paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        assert.ok(operation.summary, `${method} ${route} has a summary`);
        const responses = operation.responses as Record<string, unknown>;
        assert.ok(responses['4XX'] && responses['5XX'], `${method} ${route} documents its errors`);
      }
    }
  }
});
