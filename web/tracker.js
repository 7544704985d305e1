/**
 * The tracker's page: a searchable catalog, the swarm of the selected file as an availability map,
 * and the live peers, kept up to date by the API's event stream (no polling).
 */
/* global document, window, history, location, URLSearchParams */
import {
  api,
  debounce,
  el,
  followEvents,
  formatBytes,
  formatTime,
  localizeTimes,
  shortId,
  syncRows,
} from './common.js';
import { drawAvailability } from './map.js';

const $ = (id) => document.getElementById(id);
const search = $('search');
const filesBody = $('files-body');
const peersBody = $('peers-body');
const swarm = $('swarm');
const canvas = $('swarm-map');
const live = $('live');

let selected = new URLSearchParams(location.search).get('file');
let lastSwarm = null;
let events = null;

function fileRowCreate() {
  const button = el('button', { className: 'link', attrs: { type: 'button' } });
  const progress = el('progress', { attrs: { max: 100, value: 0 } });
  return el(
    'tr',
    {},
    el('td', {}, button),
    el('td', { className: 'num' }),
    el('td', { className: 'num' }),
    el('td', { className: 'num' }),
    el('td', {}, progress, ' ', el('span')),
    el('td', {}, el('code')),
  );
}

function fileRowUpdate(row, file) {
  const percent = Math.floor(file.completeness * 100);
  const button = row.cells[0].querySelector('button');
  button.textContent = file.name;
  button.dataset.file = file.id;
  row.cells[1].textContent = formatBytes(file.size);
  row.cells[2].textContent = String(file.chunks);
  row.cells[3].textContent = `${file.seeders} / ${file.peers}`;
  row.cells[4].querySelector('progress').value = percent;
  row.cells[4].querySelector('span').textContent = `${percent}%`;
  const code = row.cells[5].querySelector('code');
  code.textContent = shortId(file.id);
  code.title = file.id;
  row.classList.toggle('selected', file.id === selected);
}

function peerRowCreate() {
  return el(
    'tr',
    {},
    el('td'),
    el('td', {}, el('code')),
    el('td'),
    el('td', { className: 'num' }),
    el('td', { className: 'num' }),
    el('td', {}, el('time')),
  );
}

function peerRowUpdate(row, peer) {
  row.cells[0].textContent = peer.name;
  const code = row.cells[1].querySelector('code');
  code.textContent = shortId(peer.peerId);
  code.title = peer.peerId;
  row.cells[2].textContent = peer.address;
  row.cells[3].textContent = String(peer.files);
  row.cells[4].textContent = formatBytes(peer.uploadedBytes);
  const time = row.cells[5].querySelector('time');
  time.dateTime = peer.connectedAt;
  time.textContent = formatTime(peer.connectedAt);
}

async function refreshFiles() {
  const query = search.value.trim();
  const { total, files } = await api('GET', `/api/files?q=${encodeURIComponent(query)}`);
  syncRows(filesBody, files, (f) => f.id, fileRowCreate, fileRowUpdate);
  const note = $('files-note');
  if (total === 0) note.textContent = query ? 'No file matches.' : 'Nothing is shared yet.';
  else
    note.textContent =
      files.length < total ? `${files.length} of ${total} files shown: search to narrow.` : '';
}

async function refreshPeers() {
  const { total, peers } = await api('GET', '/api/peers');
  syncRows(peersBody, peers, (p) => p.peerId, peerRowCreate, peerRowUpdate);
  $('peers-note').textContent =
    total === 0
      ? 'No peer is connected.'
      : total > peers.length
        ? `${peers.length} of ${total} peers shown.`
        : '';
}

function showSwarm(data) {
  if (data.id !== selected) return;
  if (data.gone) {
    $('swarm-stats').textContent = 'This file has left the catalog: no live peer holds any of it.';
    return;
  }
  lastSwarm = data;
  $('swarm-name').textContent = data.name;
  const rowsNote =
    data.peers.length < data.holders ? ` (the ${data.peers.length} with the most chunks shown)` : '';
  $('swarm-stats').textContent =
    `${formatBytes(data.size)} in ${data.chunks} chunks of ${formatBytes(data.chunkSize)} · ` +
    `${data.holders} peers hold some of it, ${data.seeders} all of it${rowsNote} · ` +
    `${data.chunksAvailable} of ${data.chunks} chunks available, every chunk held by at least ${data.minCount}`;
  drawAvailability(canvas, data);
}

/** (Re)opens the event stream, following the selected file's swarm if there is one. */
function connect() {
  if (events) events.close();
  const url = selected ? `/api/events?file=${selected}` : '/api/events';
  events = followEvents(
    url,
    {
      catalog: (counts) => {
        $('summary-peers').textContent = String(counts.peers);
        $('summary-files').textContent = String(counts.files);
        refreshFiles().catch(report);
        refreshPeers().catch(report);
      },
      swarm: showSwarm,
    },
    live,
  );
}

function select(id) {
  selected = id;
  lastSwarm = null;
  swarm.hidden = false;
  $('swarm-name').textContent = '';
  $('swarm-stats').textContent = 'loading…';
  for (const row of filesBody.rows) row.classList.toggle('selected', row.dataset.key === id);
  history.replaceState(null, '', `?file=${id}`);
  connect();
}

function report(err) {
  $('files-note').textContent = `Could not refresh: ${err.message}`;
}

search.addEventListener(
  'input',
  debounce(() => refreshFiles().catch(report), 200),
);
filesBody.addEventListener('click', (event) => {
  const button = event.target.closest('button[data-file]');
  if (button) select(button.dataset.file);
});
window.addEventListener(
  'resize',
  debounce(() => lastSwarm && drawAvailability(canvas, lastSwarm), 150),
);

localizeTimes();
if (selected && /^[0-9a-f]{64}$/i.test(selected)) select(selected.toLowerCase());
else {
  selected = null;
  connect();
}
