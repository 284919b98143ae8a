import { randomBytes } from 'node:crypto';
import type { OpsStatus } from './types';
import { type OpsLinks, renderOps } from './view';

/** How often the page asks for /api/ops/status. */
export const REFRESH_MS = 5_000;

const STYLE = `
:root{color-scheme:light dark;--bg:#f6f7f9;--fg:#1b1f24;--card:#fff;--line:#d8dde3;--muted:#5c6670;--ok:#1a7f37;--bad:#c62828;--warn:#9a6700;--accent:#0b5cad}
@media (prefers-color-scheme:dark){:root{--bg:#111418;--fg:#e6e9ec;--card:#1b2026;--line:#2f3740;--muted:#9aa5b1;--ok:#4ac26b;--bad:#ff6b6b;--warn:#d4a72c;--accent:#6cb6ff}}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
header{display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:baseline;justify-content:space-between;padding:.75rem 1rem;border-bottom:1px solid var(--line);background:var(--card)}
header h1{font-size:1.15rem;margin:0}
main{max-width:1200px;margin:0 auto;padding:.75rem}
h2{font-size:1.05rem;margin:1.25rem 0 .5rem}
h3{font-size:.98rem;margin:.2rem 0 .4rem;display:flex;flex-wrap:wrap;gap:.4rem;align-items:center}
section>h3{margin-top:1rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,320px),1fr));gap:.75rem}
.card,section#certificate,section#fpx{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.75rem}
section#certificate h2,section#fpx h2{margin-top:0}
.badge{display:inline-block;font-size:.75rem;font-weight:600;padding:.05rem .45rem;border-radius:99px;border:1px solid currentColor;text-transform:lowercase}
.succeeded,.delivered,.reachable,.ok{color:var(--ok)}
.failed,.rejected,.unreachable,.bad{color:var(--bad)}
.running,.queued,.processing,.partial{color:var(--accent)}
.never,.superseded,.muted{color:var(--muted)}
.summary{border-radius:8px;padding:.6rem .9rem;margin:.25rem 0 .5rem;border:1px solid currentColor;background:var(--card)}
.summary p,.summary ul{margin:.1rem 0}
.error{color:var(--bad);white-space:pre-wrap;overflow-wrap:anywhere;margin:.4rem 0}
.when,.progress{margin:.2rem 0}
progress{width:8rem;vertical-align:middle}
dl{margin:.4rem 0}
dl.counts{display:grid;grid-template-columns:repeat(5,minmax(0,1fr));gap:.25rem}
dl.counts div{text-align:center}
dl.counts dt{font-size:.75rem;color:var(--muted)}
dl.counts dd{margin:0;font-weight:600;font-variant-numeric:tabular-nums}
dl.facts div{display:grid;grid-template-columns:minmax(7rem,35%) 1fr;gap:.5rem;padding:.2rem 0;border-bottom:1px solid var(--line)}
dl.facts dt{color:var(--muted)}
dl.facts dd{margin:0;overflow-wrap:anywhere}
.wrap{word-break:break-all}
ul.plain{list-style:none;margin:0;padding:0}
.scroll{overflow-x:auto}
table.grid{border-collapse:collapse;width:100%;background:var(--card);font-variant-numeric:tabular-nums}
table.grid th,table.grid td{border-bottom:1px solid var(--line);padding:.35rem .5rem;text-align:left;vertical-align:top}
table.grid th{font-size:.8rem;color:var(--muted);font-weight:600}
tr.warn td:first-child{border-left:3px solid var(--warn)}
td.message{max-width:28rem;overflow-wrap:anywhere;font-size:.85rem}
button{font:inherit;padding:.3rem .8rem;border-radius:6px;border:1px solid var(--accent);background:var(--accent);color:#fff;cursor:pointer;min-height:2rem}
button[disabled]{opacity:.45;cursor:default}
form.act{margin:0}
figure.chart{margin:.5rem 0 0}
figure.chart svg{width:100%;height:auto;max-height:110px;display:block}
figure.chart figcaption{font-size:.75rem;color:var(--muted)}
.bar{fill:var(--accent);opacity:.55}.bar.failed{fill:var(--bad);opacity:.8}
.line{fill:none;stroke:var(--warn);stroke-width:1.5}.dot{fill:var(--warn)}
.axis{stroke:var(--line)}
#note{min-height:1.2rem;margin:0}
#note.bad{color:var(--bad)}
@media (max-width:520px){dl.counts{grid-template-columns:repeat(3,minmax(0,1fr))}main{padding:.5rem}}
`;

/**
 * The browser's part: every REFRESH_MS it asks for the status and re-renders with the very function the
 * server used; the buttons post with fetch and show the answer. Without JavaScript the forms post normally
 * and the server answers with a small page linking back.
 */
function clientScript(): string {
  return `(function () {
  'use strict';
  // The bundle (esbuild keepNames) wraps named inner functions as __name(fn, "name"): keep them as they are.
  var __name = function (fn) { return fn; };
  var render = (${renderOps.toString()});
  var config = JSON.parse(document.getElementById('ops-config').textContent);
  var main = document.getElementById('ops');
  var note = document.getElementById('note');
  var live = document.getElementById('live');
  var timer;
  function say(text, bad) { note.textContent = text; note.className = bad ? 'bad' : ''; }
  function refresh() {
    clearTimeout(timer);
    return fetch(config.statusUrl, { headers: { accept: 'application/json' }, cache: 'no-store' })
      .then(function (response) {
        if (!response.ok) throw new Error('HTTP ' + response.status);
        return response.json();
      })
      .then(function (status) {
        main.innerHTML = render(status, config.links, Date.now());
        document.body.setAttribute('data-generated-at', status.generatedAt);
        live.textContent = 'updated ' + new Date().toLocaleTimeString();
      })
      .catch(function (error) { live.textContent = 'refresh failed (' + error.message + '), trying again'; })
      .then(function () { timer = setTimeout(refresh, config.refreshMs); });
  }
  document.addEventListener('submit', function (event) {
    var form = event.target;
    if (!form || !form.classList || !form.classList.contains('act')) return;
    event.preventDefault();
    var button = form.querySelector('button');
    if (button) button.disabled = true;
    say('working…');
    fetch(form.action, { method: 'POST', headers: { accept: 'application/json' } })
      .then(function (response) {
        return response.json().catch(function () { return { message: 'HTTP ' + response.status }; })
          .then(function (body) { say(body.message || 'HTTP ' + response.status, !response.ok); });
      })
      .catch(function (error) { say(error.message, true); })
      .then(refresh);
  });
  timer = setTimeout(refresh, config.refreshMs);
})();`;
}

let script: string | undefined;

/** The whole page: server-rendered facts, inline style and script (no request leaves for anywhere else). */
export function renderPage(
  status: OpsStatus,
  links: OpsLinks,
  now = Date.now(),
): { html: string; nonce: string } {
  const nonce = randomBytes(16).toString('base64');
  script ??= clientScript();
  const query = links.key ? `?code=${encodeURIComponent(links.key)}` : '';
  const config = { statusUrl: `${links.base}/ops/status${query}`, links, refreshMs: REFRESH_MS };
  // JSON inside <script>: no "<" may close it early.
  const configJson = JSON.stringify(config).replace(/</g, '\\u003c');
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>FPX ↔ CRM connector: operations</title>
<style nonce="${nonce}">${STYLE}</style>
</head>
<body data-generated-at="${status.generatedAt}">
<header><h1>FPX ↔ CRM connector</h1><p id="note" role="status" aria-live="polite"></p><small id="live" class="muted"><noscript>JavaScript is off: reload for new figures.</noscript></small></header>
<main id="ops">${renderOps(status, links, now)}</main>
<script type="application/json" id="ops-config">${configJson}</script>
<script nonce="${nonce}">${script}</script>
</body>
</html>`;
  return { html, nonce };
}

/** The headers of the page: nothing from elsewhere, no framing, the key in its URL never sent on as a referrer. */
export function pageHeaders(nonce: string): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': [
      "default-src 'none'",
      `script-src 'nonce-${nonce}'`,
      `style-src 'nonce-${nonce}'`,
      "connect-src 'self'",
      "img-src 'self' data:",
      "form-action 'self'",
      "base-uri 'none'",
      "frame-ancestors 'none'",
    ].join('; '),
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
  };
}

/** What a button posted without JavaScript gets: the outcome, and the way back. */
export function renderActionResult(message: string, ok: boolean, backUrl: string): string {
  const esc = (value: string) =>
    value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${ok ? 'Done' : 'Not done'}</title></head>
<body><p>${esc(message)}</p><p><a href="${esc(backUrl)}">Back to the operations page</a></p></body></html>`;
}
