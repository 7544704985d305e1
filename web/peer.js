/**
 * The peer's page: start a download by name or id, follow downloads (progress, speed, ETA, bytes
 * per source; pause and resume), share and unshare files, see the peers. Kept up to date by the
 * API's event stream (no polling); errors shown are the API's own messages.
 */
/* global document */
import {
  api,
  debounce,
  el,
  followEvents,
  formatBytes,
  formatRate,
  formatSeconds,
  localizeTimes,
  shortId,
  syncRows,
} from './common.js';

const $ = (id) => document.getElementById(id);

// ---- Downloads ------------------------------------------------------------------------------------

function downloadRowCreate() {
  return el(
    'tr',
    {},
    el('td'),
    el(
      'td',
      {},
      el('progress', { attrs: { max: 100, value: 0 } }),
      ' ',
      el('span', { className: 'pct' }),
      ' ',
      el('span', { className: 'state' }),
    ),
    el('td', { className: 'num' }),
    el('td', { className: 'num' }),
    el('td'),
    el('td', {}, el('button', { attrs: { type: 'button' } })),
  );
}

function downloadRowUpdate(row, d) {
  const percent = d.size === 0 ? 100 : Math.floor((d.bytes / d.size) * 100);
  row.dataset.state = d.state;
  row.dataset.id = d.id;
  row.cells[0].textContent = d.savedAs ?? d.name;
  row.cells[0].title = d.id;
  row.cells[1].querySelector('progress').value = percent;
  row.cells[1].querySelector('.pct').textContent = `${percent}%`;
  row.cells[1].querySelector('.state').textContent = d.error ? `failed: ${d.error.message}` : d.state;
  row.cells[2].textContent = d.state === 'paused' ? '–' : formatRate(d.bytesPerSecond);
  row.cells[3].textContent = formatSeconds(d.etaSeconds);
  row.cells[4].textContent =
    d.sources.length === 0
      ? 'looking for sources…'
      : d.sources
          .map((s) => `${s.name || shortId(s.peerId)} ${formatBytes(s.bytes)}${s.banned ? ' (banned)' : ''}`)
          .join(', ');
  const button = row.cells[5].querySelector('button');
  const action = d.state === 'running' ? 'pause' : d.state === 'paused' ? 'resume' : null;
  button.hidden = action === null;
  if (action) {
    button.textContent = action === 'pause' ? 'Pause' : 'Resume';
    button.dataset.action = action;
    button.dataset.id = d.id;
  }
}

function showDownloads({ downloads }) {
  syncRows($('downloads-body'), downloads, (d) => d.id, downloadRowCreate, downloadRowUpdate);
  $('downloads-note').textContent = downloads.length === 0 ? 'No downloads yet.' : '';
}

$('downloads-body').addEventListener('click', async (event) => {
  const button = event.target.closest('button[data-action]');
  if (!button) return;
  button.disabled = true;
  try {
    await api('POST', `/api/downloads/${button.dataset.id}/${button.dataset.action}`);
  } catch (err) {
    $('get-error').textContent = err.message;
  } finally {
    button.disabled = false;
  }
});

async function startDownload(file) {
  $('get-error').textContent = '';
  try {
    await api('POST', '/api/downloads', { file });
    // The event stream will follow it; this shows it at once.
    showDownloads(await api('GET', '/api/downloads'));
    return true;
  } catch (err) {
    $('get-error').textContent = err.message;
    return false;
  }
}

$('get-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = $('get-input');
  if (await startDownload(input.value.trim())) input.value = '';
});

// ---- Catalog --------------------------------------------------------------------------------------

function catalogRowCreate() {
  return el(
    'tr',
    {},
    el('td'),
    el('td', { className: 'num' }),
    el('td', { className: 'num' }),
    el('td', {}, el('code')),
    el('td', {}, el('button', { text: 'Download', attrs: { type: 'button' } })),
  );
}

function catalogRowUpdate(row, f) {
  row.cells[0].textContent = f.name;
  row.cells[1].textContent = formatBytes(f.size);
  row.cells[2].textContent = `${f.seeders} / ${f.peers}`;
  const code = row.cells[3].querySelector('code');
  code.textContent = shortId(f.id);
  code.title = f.id;
  row.cells[4].querySelector('button').dataset.get = f.id;
}

async function refreshCatalog() {
  const query = $('catalog-search').value.trim();
  const { total, files, unreachable } = await api('GET', `/api/catalog?q=${encodeURIComponent(query)}`);
  syncRows($('catalog-body'), files, (f) => f.id, catalogRowCreate, catalogRowUpdate);
  const away = unreachable.map((u) => u.source).join(', ');
  const shown =
    total === 0 ? 'Nothing found.' : files.length < total ? `${files.length} of ${total} shown.` : '';
  $('catalog-note').textContent = away ? `${shown} Not answering: ${away}.` : shown;
}

$('catalog').addEventListener('toggle', () => {
  if ($('catalog').open) refreshCatalog().catch((err) => ($('catalog-note').textContent = err.message));
});
$('catalog-search').addEventListener(
  'input',
  debounce(() => refreshCatalog().catch((err) => ($('catalog-note').textContent = err.message)), 250),
);
$('catalog-body').addEventListener('click', (event) => {
  const button = event.target.closest('button[data-get]');
  if (button) startDownload(button.dataset.get);
});

// ---- Shared files ---------------------------------------------------------------------------------

function sharedRowCreate() {
  return el(
    'tr',
    {},
    el('td'),
    el('td', { className: 'num' }),
    el('td', { className: 'num' }),
    el('td', {}, el('code')),
    el('td', {}, el('button', { text: 'Unshare', attrs: { type: 'button' } })),
  );
}

function sharedRowUpdate(row, f) {
  row.cells[0].textContent = f.name;
  row.cells[0].title = f.path;
  row.cells[1].textContent = formatBytes(f.size);
  row.cells[2].textContent = String(f.chunks);
  const code = row.cells[3].querySelector('code');
  code.textContent = shortId(f.id);
  code.title = f.id;
  row.cells[4].querySelector('button').dataset.unshare = f.id;
}

async function refreshShared() {
  const { total, files } = await api('GET', '/api/shared');
  syncRows($('shared-body'), files, (f) => f.id, sharedRowCreate, sharedRowUpdate);
  $('shared-note').textContent =
    total === 0
      ? 'Nothing shared yet.'
      : files.length < total
        ? `${files.length} of ${total} shared files shown.`
        : '';
}

$('share-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = $('share-input');
  $('share-error').textContent = '';
  try {
    const { files } = await api('POST', '/api/shared', { path: input.value.trim() });
    input.value = '';
    const refused = files.filter((f) => f.refused);
    if (refused.length > 0)
      $('share-error').textContent = refused.map((f) => `${f.name}: ${f.refused.message}`).join('; ');
    await refreshShared();
  } catch (err) {
    $('share-error').textContent = err.message;
  }
});

$('shared-body').addEventListener('click', async (event) => {
  const button = event.target.closest('button[data-unshare]');
  if (!button) return;
  $('share-error').textContent = '';
  try {
    await api('DELETE', `/api/shared/${button.dataset.unshare}`);
    await refreshShared();
  } catch (err) {
    $('share-error').textContent = err.message;
  }
});

// ---- Peers and status -----------------------------------------------------------------------------

function peerRowCreate() {
  return el('tr', {}, el('td'), el('td', {}, el('code')), el('td'), el('td'), el('td', { className: 'num' }));
}

function peerRowUpdate(row, p) {
  row.cells[0].textContent = p.name;
  const code = row.cells[1].querySelector('code');
  code.textContent = shortId(p.peerId);
  code.title = p.peerId;
  row.cells[2].textContent = p.address;
  row.cells[3].textContent = p.file || '–';
  row.cells[4].textContent = p.totalChunks ? `${p.chunks} / ${p.totalChunks}` : '–';
}

async function refreshPeers() {
  const { peers } = await api('GET', '/api/peers');
  syncRows($('peers-body'), peers, (p) => `${p.peerId} ${p.file}`, peerRowCreate, peerRowUpdate);
  $('peers-note').textContent = peers.length === 0 ? 'No other peer known yet.' : '';
}

async function refreshStatus() {
  const status = await api('GET', '/api/status');
  $('self-uploaded').textContent = formatBytes(status.uploadedBytes);
  const trackers = $('trackers');
  trackers.replaceChildren(
    ...(status.trackers.length === 0
      ? ['none']
      : status.trackers.flatMap((t) => [
          el('span', { className: 'badge', text: t.label, data: { connected: t.connected } }),
          ' ',
        ])),
  );
}

const reportPeers = (err) => ($('peers-note').textContent = `Could not refresh: ${err.message}`);

followEvents(
  '/api/events',
  {
    downloads: showDownloads,
    shared: () => refreshShared().catch((err) => ($('shared-note').textContent = err.message)),
    peers: () => refreshPeers().catch(reportPeers),
    status: () => refreshStatus().catch(reportPeers),
  },
  $('live'),
);
localizeTimes();
refreshPeers().catch(reportPeers);
