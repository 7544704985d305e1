/**
 * The shell both dashboards' pages share: the head (stylesheet, the page's script, favicon), then a
 * header with the role, a summary line that ends with the API link and the live-updates state, and
 * the page's own sections in <main>.
 */
import { html, type SafeHtml } from './html.js';

export interface DashboardPageOptions {
  title: string;
  /** The page's script under /assets/ (a module, so it runs after the document is parsed). */
  script: string;
  /** Shown after "swarmshare" in the heading. */
  role: 'peer' | 'tracker';
  /** What follows the role in the heading. */
  heading?: SafeHtml;
  /** The summary line, before the API link. */
  summary: SafeHtml;
  /** What follows the summary in the header. */
  note?: SafeHtml;
  /** The page's sections. */
  main: SafeHtml;
}

/** A dashboard's page; the favicon is inline (no request that could fail). */
export function dashboardPage(options: DashboardPageOptions): string {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${options.title}</title>
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href="/assets/style.css" />
        <script type="module" src="${`/assets/${options.script}`}"></script>
      </head>
      <body>
        <header>
          <h1>swarmshare <span class="role">${options.role}</span>${options.heading}</h1>
          <p class="summary">
            ${options.summary} · <a href="/docs">API</a>
            <span id="live" class="live" data-state="connecting">connecting…</span>
          </p>
          ${options.note}
        </header>
        <main>${options.main}</main>
      </body>
    </html> `.value;
}
