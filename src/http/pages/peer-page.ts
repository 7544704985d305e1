/**
 * The peer's page, rendered on the server with the data of the moment; web/peer.js then keeps it
 * live and wires the forms and buttons to the API.
 */
import { formatBytes } from '../../cli/format.js';
import type { DownloadView, PeerStatus, SharedFileView } from '../peer-dashboard.js';
import { html, type SafeHtml } from './html.js';
import { dashboardPage } from './layout.js';

export interface PeerPageModel {
  status: PeerStatus;
  downloads: DownloadView[];
  shared: { total: number; files: SharedFileView[] };
}

export function renderPeerPage({ status, downloads, shared }: PeerPageModel): string {
  return dashboardPage({
    title: `swarmshare peer ${status.name}`,
    script: 'peer.js',
    role: 'peer',
    heading: html` <span id="self-name">${status.name}</span>`,
    summary: html`<code id="self-id" title="${status.peerId}">${status.peerId.slice(0, 12)}</code> · serving
      on <span id="self-address">${status.address}</span> · uploaded
      <span id="self-uploaded">${formatBytes(status.uploadedBytes)}</span> · trackers:
      <span id="trackers"
        >${status.trackers.length === 0 ? 'none' : status.trackers.map(trackerBadge)}</span
      >`,
    note: html`<p class="note">Folder: <code id="self-dir">${status.dir}</code></p>`,
    main: html`<section id="get">
        <h2>Download</h2>
        <form id="get-form" autocomplete="off">
          <input
            id="get-input"
            name="file"
            required
            placeholder="file name, id or id prefix"
            aria-label="file to download"
          />
          <button type="submit">Download</button>
        </form>
        <p id="get-error" class="error" role="alert"></p>
        <details id="catalog">
          <summary>Browse what the swarm offers</summary>
          <input
            id="catalog-search"
            type="search"
            placeholder="search by name"
            aria-label="search the catalog"
          />
          <table>
            <thead>
              <tr>
                <th>file</th>
                <th class="num">size</th>
                <th class="num">sources</th>
                <th>id</th>
                <th></th>
              </tr>
            </thead>
            <tbody id="catalog-body"></tbody>
          </table>
          <p id="catalog-note" class="note"></p>
        </details>
      </section>
      <section id="downloads">
        <h2>Downloads</h2>
        <table>
          <thead>
            <tr>
              <th>file</th>
              <th>progress</th>
              <th class="num">speed</th>
              <th class="num">ETA</th>
              <th>sources (bytes each)</th>
              <th></th>
            </tr>
          </thead>
          <tbody id="downloads-body">
            ${downloads.map(downloadRow)}
          </tbody>
        </table>
        <p id="downloads-note" class="note">${downloads.length === 0 ? 'No downloads yet.' : ''}</p>
      </section>
      <section id="shared">
        <h2>Shared files</h2>
        <form id="share-form" autocomplete="off">
          <input
            id="share-input"
            name="path"
            required
            placeholder="path inside the folder"
            aria-label="path to share"
          />
          <button type="submit">Share</button>
        </form>
        <p id="share-error" class="error" role="alert"></p>
        <table>
          <thead>
            <tr>
              <th>file</th>
              <th class="num">size</th>
              <th class="num">chunks</th>
              <th>id</th>
              <th></th>
            </tr>
          </thead>
          <tbody id="shared-body">
            ${shared.files.map(sharedRow)}
          </tbody>
        </table>
        <p id="shared-note" class="note">${sharedNote(shared.total, shared.files.length)}</p>
      </section>
      <section id="peers">
        <h2>Peers</h2>
        <table>
          <thead>
            <tr>
              <th>name</th>
              <th>id</th>
              <th>address</th>
              <th>file</th>
              <th class="num">chunks</th>
            </tr>
          </thead>
          <tbody id="peers-body"></tbody>
        </table>
        <p id="peers-note" class="note"></p>
      </section>`,
  });
}

function trackerBadge(tracker: { label: string; connected: boolean }): SafeHtml {
  return html`<span class="badge" data-connected="${String(tracker.connected)}">${tracker.label}</span> `;
}

function sharedNote(total: number, shown: number): string {
  if (total === 0) return 'Nothing shared yet.';
  return shown < total ? `${shown} of ${total} shared files shown.` : '';
}

function downloadRow(d: DownloadView): SafeHtml {
  const percent = d.size === 0 ? 100 : Math.floor((d.bytes / d.size) * 100);
  return html`<tr data-key="${d.id}" data-id="${d.id}" data-state="${d.state}">
    <td>${d.name}</td>
    <td>
      <progress max="100" value="${percent}"></progress> <span class="pct">${percent}%</span>
      <span class="state">${d.state}</span>
    </td>
    <td class="num">${formatBytes(d.bytesPerSecond)}/s</td>
    <td class="num">${d.etaSeconds === null ? '–' : `${d.etaSeconds}s`}</td>
    <td>
      ${d.sources.map((s) => `${s.name} ${formatBytes(s.bytes)}${s.banned ? ' (banned)' : ''}`).join(', ')}
    </td>
    <td>${actionButton(d)}</td>
  </tr>`;
}

/** Pause for a running download, resume for a paused one; hidden once it ended. */
function actionButton(d: DownloadView): SafeHtml {
  const action = d.state === 'running' ? 'pause' : d.state === 'paused' ? 'resume' : null;
  if (!action) return html`<button type="button" hidden></button>`;
  return html`<button type="button" data-action="${action}" data-id="${d.id}">
    ${action === 'pause' ? 'Pause' : 'Resume'}
  </button>`;
}

function sharedRow(f: SharedFileView): SafeHtml {
  return html`<tr data-key="${f.id}">
    <td title="${f.path}">${f.name}</td>
    <td class="num">${formatBytes(f.size)}</td>
    <td class="num">${f.chunks}</td>
    <td><code title="${f.id}">${f.id.slice(0, 12)}</code></td>
    <td><button type="button" data-unshare="${f.id}">Unshare</button></td>
  </tr>`;
}
