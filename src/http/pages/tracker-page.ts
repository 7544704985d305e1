/**
 * The tracker's page, rendered on the server with the data of the moment (so it shows something
 * useful before, or without, its script); web/tracker.js then keeps it live.
 */
import { formatBytes } from '../../cli/format.js';
import type { CatalogFile, TrackerPeerView, TrackerSummary } from '../tracker-dashboard.js';
import { html, type SafeHtml } from './html.js';
import { dashboardPage } from './layout.js';

export interface TrackerPageModel {
  summary: TrackerSummary;
  files: { total: number; files: CatalogFile[] };
  peers: { total: number; peers: TrackerPeerView[] };
}

export function renderTrackerPage({ summary, files, peers }: TrackerPageModel): string {
  return dashboardPage({
    title: 'swarmshare tracker',
    script: 'tracker.js',
    role: 'tracker',
    summary: html`<span id="summary-peers">${summary.peers}</span> peers ·
      <span id="summary-files">${summary.files}</span> files · up since
      <time id="summary-since" datetime="${summary.startedAt}">${summary.startedAt}</time> ·
      <a href="/metrics">metrics</a>`,
    main: html`<section id="catalog">
        <h2>Catalog</h2>
        <input id="search" type="search" placeholder="search by name" aria-label="search the catalog" />
        <table>
          <thead>
            <tr>
              <th>file</th>
              <th class="num">size</th>
              <th class="num">chunks</th>
              <th class="num" title="live peers with every chunk / with any chunk">sources</th>
              <th>completeness</th>
              <th>id</th>
            </tr>
          </thead>
          <tbody id="files-body">
            ${files.files.map(fileRow)}
          </tbody>
        </table>
        <p id="files-note" class="note">${filesNote(files.total, files.files.length)}</p>
      </section>
      <section id="swarm" hidden>
        <h2>Swarm of <span id="swarm-name"></span></h2>
        <p id="swarm-stats" class="note"></p>
        <canvas id="swarm-map" width="960" height="80" aria-label="chunk availability map"></canvas>
        <p class="legend">
          Top strip: how many live peers hold each chunk (red: nobody, darker green: more peers). Below: one
          row per peer, a filled cell for each chunk it holds.
        </p>
      </section>
      <section id="peers">
        <h2>Peers</h2>
        <table>
          <thead>
            <tr>
              <th>name</th>
              <th>id</th>
              <th>address</th>
              <th class="num">files</th>
              <th class="num">bytes served</th>
              <th>connected since</th>
            </tr>
          </thead>
          <tbody id="peers-body">
            ${peers.peers.map(peerRow)}
          </tbody>
        </table>
        <p id="peers-note" class="note">${peers.total === 0 ? 'No peer is connected.' : ''}</p>
      </section>`,
  });
}

function filesNote(total: number, shown: number): string {
  if (total === 0) return 'Nothing is shared yet.';
  return shown < total ? `${shown} of ${total} files shown: search to narrow.` : '';
}

function fileRow(file: CatalogFile): SafeHtml {
  const percent = Math.floor(file.completeness * 100);
  return html`<tr data-key="${file.id}">
    <td><button type="button" class="link" data-file="${file.id}">${file.name}</button></td>
    <td class="num">${formatBytes(file.size)}</td>
    <td class="num">${file.chunks}</td>
    <td class="num">${file.seeders} / ${file.peers}</td>
    <td><progress max="100" value="${percent}"></progress> <span>${percent}%</span></td>
    <td><code title="${file.id}">${file.id.slice(0, 12)}</code></td>
  </tr>`;
}

function peerRow(peer: TrackerPeerView): SafeHtml {
  return html`<tr data-key="${peer.peerId}">
    <td>${peer.name}</td>
    <td><code title="${peer.peerId}">${peer.peerId.slice(0, 12)}</code></td>
    <td>${peer.address}</td>
    <td class="num">${peer.files}</td>
    <td class="num">${formatBytes(peer.uploadedBytes)}</td>
    <td><time datetime="${peer.connectedAt}">${peer.connectedAt}</time></td>
  </tr>`;
}
