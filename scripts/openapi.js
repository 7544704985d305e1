// Writes the dashboards' OpenAPI documents to docs/openapi-tracker.json and docs/openapi-peer.json
// (`npm run openapi`, after a build), formatted as prettier would, so `npm run lint` stays clean.
/* global console, URL */
import fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import prettier from 'prettier';
import { openApiDocuments } from '../dist/src/http/openapi-documents.js';

const docs = fileURLToPath(new URL('../docs/', import.meta.url));
const documents = await openApiDocuments();
await fs.mkdir(docs, { recursive: true });
for (const [name, document] of Object.entries(documents)) {
  const file = `${docs}openapi-${name}.json`;
  const options = { ...(await prettier.resolveConfig(file)), filepath: file };
  await fs.writeFile(file, await prettier.format(JSON.stringify(document), options));
  console.log(`wrote ${file}`);
}
