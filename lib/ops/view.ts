import type { OpsStatus } from './types';

/** Where the page's buttons and refreshes go: the route prefix's path, and the function key when one was used. */
export interface OpsLinks {
  /** e.g. `/api` */
  base: string;
  /** The `code` the page was opened with ('' when none): Azure asks every ops route for it. */
  key: string;
}

/**
 * The page's content from the status: every fact, escaped. The server renders the page with it, and the
 * browser re-renders with the same function on each refresh: its source is sent in the page's script
 * (`renderOps.toString()`), so it must stay self-contained — no reference to anything outside its body but
 * JavaScript's own globals. (The bundle's `keepNames` wraps inner functions in `__name(…)`: the page's
 * script defines that as the identity.) Figures carry `data-k`, their path in the status JSON.
 */
export function renderOps(status: OpsStatus, links: OpsLinks, now: number): string {
  const esc = (value: unknown): string =>
    String(value ?? '')
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;')
      .replace(/'/g, '&#39;');
  const query = links.key ? `?code=${encodeURIComponent(links.key)}` : '';
  const url = (path: string) => esc(`${links.base}/${path}${query}`);
  /** An operator's action: a button that POSTs to `path` (markup, `label`, is the caller's). */
  const action = (path: string, label: string, disabled = false) =>
    `<form class="act" method="post" action="${url(path)}"><button type="submit"${disabled ? ' disabled' : ''}>${label}</button></form>`;
  const figure = (key: string, value: unknown) => `<span data-k="${esc(key)}">${esc(value)}</span>`;
  const when = (iso: string) => {
    if (!iso) return '—';
    const ms = Date.parse(iso);
    if (!Number.isFinite(ms)) return esc(iso);
    const ago = Math.round((now - ms) / 1000);
    const rel =
      Math.abs(ago) < 90
        ? `${ago} s`
        : Math.abs(ago) < 5400
          ? `${Math.round(ago / 60)} min`
          : Math.abs(ago) < 172800
            ? `${Math.round(ago / 3600)} h`
            : `${Math.round(ago / 86400)} days`;
    const at = new Date(ms);
    const absolute = `${at.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
    const month = 'Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec'.split(' ')[at.getUTCMonth()];
    const short = `${month} ${at.getUTCDate()} ${absolute.slice(11, 16)} UTC`;
    return `<time datetime="${esc(iso)}" title="${esc(absolute)}">${esc(short)} (${ago >= 0 ? `${esc(rel)} ago` : `in ${esc(rel.replace('-', ''))}`})</time>`;
  };
  const duration = (ms: number) =>
    ms < 1000
      ? `${Math.round(ms)} ms`
      : ms < 120_000
        ? `${(ms / 1000).toFixed(1)} s`
        : ms < 7_200_000
          ? `${(ms / 60_000).toFixed(1)} min`
          : `${(ms / 3_600_000).toFixed(1)} h`;
  const badge = (state: string) => `<span class="badge ${esc(state)}">${esc(state)}</span>`;
  const error = (message: string) => (message ? `<p class="error">${esc(message)}</p>` : '');

  const chart = (stream: OpsStatus['streams'][number]) => {
    const runs = stream.runs.slice().reverse();
    if (runs.length === 0) return '<p class="muted">No runs recorded yet.</p>';
    const width = 320;
    const height = 80;
    const top = 6;
    const plot = height - top - 4;
    const step = width / Math.max(runs.length, 10);
    const longest = Math.max(1, ...runs.map((r) => r.durationMs));
    const changes = (r: (typeof runs)[number]) => r.created + r.changed + r.removed;
    const most = Math.max(1, ...runs.map(changes));
    const bars = runs
      .map((r, i) => {
        const h = Math.max(1, (r.durationMs / longest) * plot);
        const x = i * step + step * 0.15;
        const label = `${r.startedAt.slice(0, 16).replace('T', ' ')}: ${r.status}, ${duration(r.durationMs)}, ${changes(r)} changes`;
        return `<rect class="bar ${r.status === 'failed' ? 'failed' : ''}" x="${x.toFixed(1)}" y="${(height - 4 - h).toFixed(1)}" width="${(step * 0.7).toFixed(1)}" height="${h.toFixed(1)}"><title>${esc(label)}</title></rect>`;
      })
      .join('');
    const points = runs
      .map(
        (r, i) =>
          `${(i * step + step / 2).toFixed(1)},${(height - 4 - (changes(r) / most) * plot).toFixed(1)}`,
      )
      .join(' ');
    const dots = points
      .split(' ')
      .map((p) => `<circle class="dot" cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="2.5"></circle>`)
      .join('');
    const summary = `Last ${runs.length} runs of ${stream.title}: bars show duration (longest ${duration(longest)}), dots show changes (most ${most}).`;
    return (
      `<figure class="chart"><svg viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(summary)}">` +
      `<line class="axis" x1="0" y1="${height - 4}" x2="${width}" y2="${height - 4}"></line>${bars}` +
      `<polyline class="line" points="${points}"></polyline>${dots}</svg>` +
      `<figcaption>bars: duration (longest ${esc(duration(longest))}) · dots: created + changed + removed (most ${most}) · ${runs.length} runs, oldest left</figcaption></figure>`
    );
  };

  const stream = (s: OpsStatus['streams'][number]) => {
    const k = (field: string) => `streams[${s.stream}].${field}`;
    const counts = (['seen', 'created', 'changed', 'removed', 'apiCalls'] as const)
      .map(
        (field) =>
          `<div><dt>${field === 'apiCalls' ? 'FPX calls' : field}</dt><dd>${figure(k(field), s[field])}</dd></div>`,
      )
      .join('');
    let progress = '';
    if (s.state === 'running' && s.progress) {
      const p = s.progress;
      progress =
        `<p class="progress"><progress${p.expectedPages ? ` max="${p.expectedPages}"` : ''} value="${p.pagesRead}"></progress> ` +
        `${figure(k('progress.pagesRead'), p.pagesRead)} pages read` +
        (p.expectedPages ? ` of ~${figure(k('progress.expectedPages'), p.expectedPages)} expected` : '') +
        ` (${p.items} items${p.expectedCount !== undefined ? ` of ${p.expectedCount} by FPX's count` : ''}), as of ${when(p.at)}</p>`;
    }
    if (s.tenants) {
      const t = s.tenants;
      progress +=
        `<p class="progress">${s.state === 'running' ? `<progress max="${Math.max(1, t.enqueued)}" value="${t.done}"></progress> ` : ''}` +
        `tenants: ${figure(k('tenants.done'), t.done)} of ${figure(k('tenants.enqueued'), t.enqueued)} done` +
        (s.state === 'running' ? '' : `, ${t.succeeded} succeeded, ${t.failed} failed`) +
        '</p>';
    }
    if (s.events) {
      const e = s.events;
      progress +=
        `<p class="progress">CRM events: ${figure(k('events.sent'), e.sent)} sent, ` +
        `${figure(k('events.pending'), e.pending)} pending, ${figure(k('events.failed'), e.failed)} failed, as of ${when(e.at)}</p>`;
    }
    const continuing = s.continuing
      ? `<p class="muted">A long listing: part ${s.continuing.parts} ended, the next goes on at page ${s.continuing.nextPage} (${s.continuing.itemsBefore} items so far, listing started ${when(s.continuing.listingStartedAt)}).</p>`
      : '';
    const shown = s.state === 'running' ? s.lastStatus : '';
    return (
      `<article class="card" id="stream-${esc(s.stream)}"><h3>${esc(s.title)} ${badge(s.state)}${s.stale ? ' <span class="badge failed">no end recorded</span>' : ''}</h3>` +
      (s.state === 'never'
        ? '<p class="muted">Not run yet.</p>'
        : `<p class="when">${s.state === 'running' ? 'running since' : 'last run'} ${when(s.lastStartedAt)}, ${s.state === 'running' ? 'for' : 'took'} ${esc(duration(s.durationMs))}` +
          (s.lastCompletedAt ? `; last success ${when(s.lastCompletedAt)}` : '') +
          '</p>' +
          progress +
          continuing +
          `${shown ? `<p class="muted">Figures below: the run before (${esc(shown)}).</p>` : ''}<dl class="counts">${counts}</dl>` +
          error(s.lastError)) +
      chart(s) +
      '</article>'
    );
  };

  const d = status.deliveries;
  const statuses = ['queued', 'processing', 'delivered', 'rejected', 'failed', 'superseded'] as const;
  const deliveryCounts =
    '<table class="grid"><thead><tr><th>status</th><th>24 hours</th><th>7 days</th></tr></thead><tbody>' +
    statuses
      .map(
        (name) =>
          `<tr class="${d.last7d[name] > 0 && (name === 'failed' || name === 'rejected') ? 'warn' : ''}"><td>${name}</td><td>${figure(`deliveries.last24h.${name}`, d.last24h[name])}</td><td>${figure(`deliveries.last7d.${name}`, d.last7d[name])}</td></tr>`,
      )
      .join('') +
    '</tbody></table>';
  const attention =
    d.attention.length === 0
      ? '<p class="muted">No failed, rejected or long-queued deliveries.</p>'
      : '<div class="scroll"><table class="grid list"><thead><tr><th>delivery</th><th>status</th><th>operation</th><th>attempts</th><th>updated</th><th>last error</th><th></th></tr></thead><tbody>' +
        d.attention
          .map(
            (a) =>
              `<tr id="delivery-${esc(a.deliveryId)}" data-delivery="${esc(a.deliveryId)}"><td><code title="${esc(a.deliveryId)}">${esc(a.deliveryId.slice(0, 8))}</code></td>` +
              `<td>${badge(a.status)}</td><td>${esc(a.op)}<br><small>${esc(a.tenantId)}</small></td><td>${a.attempts}</td><td>${when(a.updatedAt)}</td>` +
              `<td class="message">${esc(a.lastError)}</td><td>${
                a.canRetry
                  ? action(`ops/deliveries/${encodeURIComponent(a.deliveryId)}/retry`, 'Retry')
                  : '<small class="muted">fix in the CRM</small>'
              }</td></tr>`,
          )
          .join('') +
        '</tbody></table></div>';
  const totals = d.attentionTotals;
  const more =
    totals.failed + totals.rejected + totals.queued > d.attention.length
      ? `<p class="muted">Showing the newest ${d.shownPerKind} of each kind: ${totals.failed} failed, ${totals.rejected} rejected, ${totals.queued} long-queued in all.</p>`
      : '';

  const queues =
    '<table class="grid"><thead><tr><th>queue</th><th>messages</th><th></th></tr></thead><tbody>' +
    status.queues
      .map(
        (q) =>
          `<tr class="${q.poison && q.depth > 0 ? 'warn' : ''}" data-queue="${esc(q.name)}"><td><code>${esc(q.name)}</code></td><td>${q.depth < 0 ? `unknown${error(q.error ?? '')}` : figure(`queues[${q.name}].depth`, q.depth)}</td><td>${
            q.requeueTo
              ? action(
                  `ops/queues/${encodeURIComponent(q.name)}/requeue`,
                  `Requeue to ${esc(q.requeueTo)}`,
                  q.depth === 0,
                )
              : ''
          }</td></tr>`,
      )
      .join('') +
    '</tbody></table>';

  const c = status.certificate;
  const source =
    c.source.kind === 'keyVault'
      ? `Key Vault <code>${esc(c.source.vault)}</code>, certificate <code>${esc(c.source.name)}</code>`
      : c.source.kind === 'file'
        ? `file <code>${esc(c.source.path)}</code>`
        : 'unknown';
  const certificate = c.error
    ? `<p>${badge('failed')} the certificate cannot be loaded from ${source}</p>${error(c.error)}`
    : `<dl class="facts"><div><dt>subject</dt><dd>${figure('certificate.subject', c.subject)}</dd></div>` +
      `<div><dt>thumbprint</dt><dd><code class="wrap">${figure('certificate.thumbprint', c.thumbprint)}</code></dd></div>` +
      `<div><dt>source</dt><dd>${source}</dd></div>` +
      `<div><dt>expires</dt><dd>${when(c.notAfter)}</dd></div>` +
      `<div><dt>days left</dt><dd class="${c.daysLeft <= 14 ? 'bad' : ''}">${figure('certificate.daysLeft', c.daysLeft)}</dd></div>` +
      `<div><dt>alerts sent</dt><dd>${
        c.alerts.length === 0
          ? 'none'
          : `<ul class="plain">${c.alerts.map((a) => `<li>${esc(a.key)}: ${esc(a.status)}${a.transport ? ` by ${esc(a.transport)}` : ''} ${when(a.sentAt)}</li>`).join('')}</ul>`
      }</dd></div></dl>`;

  const f = status.fpx;
  const fpx =
    `<dl class="facts"><div><dt>FPX</dt><dd>${f.reachable ? badge('reachable') : badge('unreachable')} checked ${when(f.checkedAt)}</dd></div>` +
    `<div><dt>calls, last minute</dt><dd>${figure('fpx.callsLastMinute', f.callsLastMinute)} of ${figure('fpx.budgetPerMinute', f.budgetPerMinute)} a minute (the deployment's budget)</dd></div>` +
    `<div><dt>429s, last hour</dt><dd class="${f.throttledLastHour > 0 ? 'bad' : ''}">${figure('fpx.throttledLastHour', f.throttledLastHour)}</dd></div>` +
    `<div><dt>waiting for a slot</dt><dd>${figure('fpx.waiting', f.waiting)}${f.pausedForMs > 0 ? `, paused ${esc(duration(f.pausedForMs))} more after a 429` : ''}</dd></div>` +
    `<div><dt>storage</dt><dd>${f.storageReachable ? badge('reachable') : badge('unreachable')}</dd></div></dl>` +
    `<p class="muted">Calls and 429s are those of this instance${f.countedSeconds.hour < 3600 ? `, which has been counting for ${esc(duration(f.countedSeconds.hour * 1000))}` : ''}; other instances count their own.</p>` +
    error(f.error ?? '');

  const problems: string[] = [];
  for (const s of status.streams) {
    if (s.state === 'failed') problems.push(`${s.title}: last run failed`);
    if (s.stale) problems.push(`${s.title}: a run started ${duration(s.durationMs)} ago has recorded no end`);
  }
  if (d.attentionTotals.failed > 0) problems.push(`${d.attentionTotals.failed} failed deliveries`);
  if (d.attentionTotals.queued > 0) problems.push(`${d.attentionTotals.queued} deliveries queued for long`);
  for (const q of status.queues) if (q.poison && q.depth > 0) problems.push(`${q.depth} in ${q.name}`);
  if (c.error) problems.push('the certificate cannot be loaded');
  else if (c.daysLeft <= 14) problems.push(`the certificate expires in ${c.daysLeft} days`);
  if (!f.reachable) problems.push('FPX is not reachable');
  if (!f.storageReachable) problems.push('storage is not reachable');
  const summary =
    problems.length === 0
      ? '<p class="summary ok">Everything is working.</p>'
      : `<div class="summary bad"><p>Needs attention:</p><ul>${problems.map((p) => `<li>${esc(p)}</li>`).join('')}</ul></div>`;

  return (
    summary +
    `<section id="syncs"><h2>Syncs</h2><div class="cards">${status.streams.map(stream).join('')}</div></section>` +
    `<section id="deliveries"><h2>CRM deliveries</h2>${error(d.error ?? '')}${deliveryCounts}<h3>Failed, rejected, and queued longer than ${d.longQueuedMinutes} min</h3>${attention}${more}</section>` +
    `<section id="queues"><h2>Queues</h2>${queues}</section>` +
    `<div class="cards two"><section id="certificate"><h2>Certificate</h2>${certificate}</section>` +
    `<section id="fpx"><h2>FPX</h2>${fpx}</section></div>` +
    `<p class="muted generated">Facts as of ${when(status.generatedAt)}.</p>`
  );
}
