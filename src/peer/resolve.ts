/** Turning what a person typed (a name, an id, an id prefix) into one file. */
import { SwarmError } from '../errors.js';
import { fileIdHex, isFileIdHex, type Manifest } from '../storage/manifest.js';
import type { FileSummary } from '../wire/tracker-messages.js';

const ID_PREFIX = /^[0-9a-f]{6,64}$/i;

export function matchesNameOrId(manifest: Manifest, nameOrId: string): boolean {
  if (ID_PREFIX.test(nameOrId) && fileIdHex(manifest.id).startsWith(nameOrId.toLowerCase())) return true;
  return manifest.name === nameOrId;
}

/**
 * Picks one catalog entry for a name or id: a full id or unique id prefix wins; otherwise the
 * files named exactly so. `search` narrows by name at the source, for large catalogs.
 * Several files with that name: ERR_AMBIGUOUS_NAME listing their ids.
 */
export async function resolveInCatalog(
  catalog: { files: FileSummary[] },
  nameOrId: string,
  search: (query: string) => Promise<{ files: FileSummary[] }>,
): Promise<FileSummary> {
  const text = nameOrId.trim();
  if (!text) throw new SwarmError('ERR_INVALID_ARGUMENT', 'give a file name or id');
  if (ID_PREFIX.test(text)) {
    const byId = catalog.files.filter((f) => fileIdHex(f.id).startsWith(text.toLowerCase()));
    if (byId.length === 1) return byId[0]!;
    if (byId.length > 1 && !isFileIdHex(text)) {
      throw new SwarmError(
        'ERR_AMBIGUOUS_NAME',
        `id prefix "${text}" matches ${byId.length} files; give more digits`,
      );
    }
  }
  const named = (await search(text)).files.filter((f) => f.name === text);
  if (named.length === 1) return named[0]!;
  if (named.length > 1) {
    const lines = named.map((f) => `  ${fileIdHex(f.id)}  ${f.size} bytes, ${f.seeders} sources`).join('\n');
    throw new SwarmError(
      'ERR_AMBIGUOUS_NAME',
      `"${text}" names ${named.length} different files; choose one by id:\n${lines}`,
    );
  }
  throw new SwarmError('ERR_NOT_FOUND', `no file named "${text}" in the catalog`);
}
