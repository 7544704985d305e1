/**
 * What both dashboards' scripts share: calling the API, following its event stream, building
 * elements (text always through textContent: names come from the network), and formatting.
 */
/* global document, fetch, EventSource, setTimeout, clearTimeout */

/** An error answered by the API: its stable code and its message. */
export class ApiError extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

/** Calls the API; resolves with the JSON answer, rejects with an ApiError. */
export async function api(method, path, body) {
  const init = { method, headers: { accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError('ERR_UNREACHABLE', `the dashboard did not answer: ${err.message}`, 0);
  }
  const text = await response.text();
  let json;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) {
    const error = json && json.error ? json.error : { code: 'ERR_INTERNAL', message: response.statusText };
    throw new ApiError(error.code, error.message, response.status);
  }
  return json;
}

/**
 * Follows the API's event stream. `handlers` maps event names to functions of the parsed data.
 * The browser reconnects by itself; `live` (an element) shows whether the stream is up.
 */
export function followEvents(url, handlers, live) {
  const source = new EventSource(url);
  const show = (state, text) => {
    if (!live) return;
    live.dataset.state = state;
    live.textContent = text;
  };
  source.addEventListener('open', () => show('live', 'live'));
  source.addEventListener('error', () => show('offline', 'reconnecting…'));
  for (const [event, handle] of Object.entries(handlers)) {
    source.addEventListener(event, (message) => handle(JSON.parse(message.data)));
  }
  return source;
}

/** `el('td', { text: name, className: 'num', data: { id } }, child...)`. */
export function el(tag, options = {}, ...children) {
  const element = document.createElement(tag);
  if (options.text !== undefined) element.textContent = String(options.text);
  if (options.className) element.className = options.className;
  if (options.title) element.title = options.title;
  for (const [key, value] of Object.entries(options.data ?? {})) element.dataset[key] = String(value);
  for (const [key, value] of Object.entries(options.attrs ?? {})) element.setAttribute(key, String(value));
  for (const child of children) if (child) element.append(child);
  return element;
}

/**
 * Makes the rows of `tbody` those of `items`, in order, keyed by `key(item)`: existing rows are
 * updated in place (a button being clicked is never replaced under the pointer), new ones made
 * by `create(item)`, the others removed. `update(row, item)` fills a row in.
 */
export function syncRows(tbody, items, key, create, update) {
  const existing = new Map();
  for (const row of tbody.children) existing.set(row.dataset.key, row);
  items.forEach((item, index) => {
    const id = key(item);
    let row = existing.get(id);
    existing.delete(id);
    if (!row) {
      row = create(item);
      row.dataset.key = id;
    }
    update(row, item);
    if (tbody.children[index] !== row) tbody.insertBefore(row, tbody.children[index] ?? null);
  });
  for (const row of existing.values()) row.remove();
}

/** Sets the text of the n-th cell of a row. */
export function setCell(row, index, text, title) {
  const cell = row.cells[index];
  if (cell.textContent !== String(text)) cell.textContent = String(text);
  if (title !== undefined) cell.title = title;
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(bytes) {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${UNITS[unit]}`;
}

export function formatRate(bytesPerSecond) {
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

export function formatSeconds(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '–';
  if (seconds < 90) return `${Math.round(seconds)}s`;
  const minutes = Math.floor(seconds / 60);
  return minutes < 90
    ? `${minutes}m${Math.round(seconds % 60)}s`
    : `${Math.floor(minutes / 60)}h${minutes % 60}m`;
}

/** A moment as people read it: the local date and time. */
export function formatTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

export function shortId(hex) {
  return hex.slice(0, 12);
}

/** A cell with an id: the short form shown, the whole in the tooltip. */
export function idCell(hex) {
  return el('td', {}, el('code', { text: shortId(hex), title: hex }));
}

/** Shows every server-rendered <time> in local time. */
export function localizeTimes(root = document) {
  for (const time of root.querySelectorAll('time[datetime]')) time.textContent = formatTime(time.dateTime);
}
