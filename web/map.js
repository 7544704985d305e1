/**
 * The chunk availability map on a <canvas>: chunks across; on top a heat strip of how many live
 * peers hold each chunk, below one row per peer with the chunks it holds. With more chunks than
 * pixels, each column stands for several chunks: the strip shows the fewest holders among them,
 * a peer's row how many of them it holds. Text is drawn with fillText: no markup involved.
 */
/* global window, atob */

const LABEL_WIDTH = 160;
const STRIP_HEIGHT = 22;
const ROW_HEIGHT = 14;
const GAP = 8;
const MISSING = '#dc2626';
const HELD = '#2563eb';
const NOT_HELD = '#e2e8f0';

/** Colour of a chunk held by `count` peers, `max` being the most holders of any chunk. */
function heat(count, max) {
  if (count === 0) return MISSING;
  const t = max <= 1 ? 1 : (count - 1) / (max - 1);
  return `hsl(142, 65%, ${Math.round(72 - t * 40)}%)`;
}

function decodeBitfield(base64) {
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

function fitText(ctx, text, width) {
  if (ctx.measureText(text).width <= width) return text;
  let cut = text;
  while (cut.length > 1 && ctx.measureText(`${cut}…`).width > width) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/**
 * Draws `data` (GET /api/files/{id}) on `canvas`, and records what it shows in the canvas's data
 * attributes (chunks, minCount, copies, available, peers) for tests and tools.
 */
export function drawAvailability(canvas, data) {
  const rows = data.peers;
  const cssWidth = Math.max(canvas.parentElement.clientWidth - 2, 320);
  const cssHeight = STRIP_HEIGHT + GAP + rows.length * ROW_HEIGHT + 4;
  const ratio = window.devicePixelRatio || 1;
  canvas.style.height = `${cssHeight}px`;
  canvas.width = Math.round(cssWidth * ratio);
  canvas.height = Math.round(cssHeight * ratio);
  const ctx = canvas.getContext('2d');
  ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, cssWidth, cssHeight);
  ctx.font = '12px system-ui, sans-serif';
  ctx.textBaseline = 'middle';

  const n = data.chunks;
  const width = cssWidth - LABEL_WIDTH;
  const columns = Math.min(n, Math.floor(width));
  const columnWidth = columns > 0 ? width / columns : width;
  /** The chunks column c stands for: [from, to). */
  const span = (c) => [
    Math.floor((c * n) / columns),
    Math.max(Math.floor(((c + 1) * n) / columns), Math.floor((c * n) / columns) + 1),
  ];
  const max = data.counts.reduce((a, b) => Math.max(a, b), 0);
  const gap = columnWidth >= 6 ? 1 : 0;

  ctx.fillStyle = '#475569';
  ctx.fillText('all peers', 4, STRIP_HEIGHT / 2);
  for (let c = 0; c < columns; c++) {
    const [from, to] = span(c);
    let fewest = Infinity;
    for (let i = from; i < to; i++) fewest = Math.min(fewest, data.counts[i]);
    ctx.fillStyle = heat(fewest, max);
    ctx.fillRect(LABEL_WIDTH + c * columnWidth, 0, columnWidth - gap, STRIP_HEIGHT);
  }

  rows.forEach((peer, r) => {
    const y = STRIP_HEIGHT + GAP + r * ROW_HEIGHT;
    ctx.fillStyle = '#1f2933';
    ctx.fillText(fitText(ctx, peer.name || peer.peerId.slice(0, 12), LABEL_WIDTH - 8), 4, y + ROW_HEIGHT / 2);
    const bits = decodeBitfield(peer.bitfield);
    for (let c = 0; c < columns; c++) {
      const [from, to] = span(c);
      let held = 0;
      for (let i = from; i < to; i++) if (bits[i >> 3] & (0x80 >> (i & 7))) held++;
      ctx.fillStyle = held === 0 ? NOT_HELD : HELD;
      ctx.globalAlpha = held === 0 ? 1 : 0.35 + (0.65 * held) / (to - from);
      ctx.fillRect(LABEL_WIDTH + c * columnWidth, y + 1, columnWidth - gap, ROW_HEIGHT - 2);
      ctx.globalAlpha = 1;
    }
  });

  canvas.dataset.chunks = String(n);
  canvas.dataset.minCount = String(data.minCount);
  canvas.dataset.copies = String(data.counts.reduce((a, b) => a + b, 0));
  canvas.dataset.available = String(data.chunksAvailable);
  canvas.dataset.peers = String(data.holders);
}
