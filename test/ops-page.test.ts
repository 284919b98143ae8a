/**
 * The operations page in a real browser: Chromium from the @sparticuz/chromium package (its binary comes with
 * `npm ci`; nothing is downloaded at run time) driven by playwright-core, against the local host serving the
 * real functions/index.ts, with a storage account of its own and the FPX sandbox over mutual TLS. The state is made the
 * way production makes it (syncs run, a webhook fails during an outage, a poison queue fills); no timing
 * assertions, every wait is for a condition. The page's own timers run on Playwright's clock: its 5-s
 * refresh comes when the test moves that clock on, not 5 s later.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import sparticuz from '@sparticuz/chromium';
import { build } from 'esbuild';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { BUNDLE_OPTIONS } from '../dev/build';
import { type RunningHost, startHost } from '../dev/host/host';
import { memoryLogger } from '../dev/host/logger';
import { type Sandbox, sandboxSettings, startSandbox } from '../dev/sandbox';
import { getDelivery, sendWebhook } from '../dev/webhook';
import { SCHEDULE_DEFAULTS } from '../lib/config';
import { type OpsStatus, REFRESH_MS } from '../lib/ops';
import { queueClient, tableClient } from '../lib/storage';
import { readDetailsState, TENANT_DETAILS_QUEUE } from '../lib/sync';
import {
  readSyncRuns,
  recordRunEnd,
  recordRunProgress,
  recordRunStart,
  recordSyncRun,
  SYNC_RUNS_TABLE,
} from '../lib/sync/sync-state';
import { newSecret } from './crm-support';
import { waitFor } from './support/wait';

const SCREENSHOT = path.join(__dirname, '..', '.local', 'ops-page.png');
const HTML_ERROR = '<img src=x onerror="window.__injected = 1"> & "quoted"';

let sandbox: Sandbox;
let host: RunningHost;
let browser: Browser;
const secrets = [newSecret()];
// Its own account on the run's Azurite: its host polls the contract's queues, and its figures count them.
const connection = inject('storageAccounts').opspage;
let failedDelivery: string;

const opsUrl = () => `${host.url}/api/ops`;
const status = async (): Promise<OpsStatus> =>
  (await (await fetch(`${opsUrl()}/status`)).json()) as OpsStatus;

beforeAll(async () => {
  // The browser starts meanwhile (its own process): it is needed only once the state below is made.
  // sparticuz's flags are made for Lambda: one process, and WebGL through SwiftShader. Here: its processes,
  // and no GPU at all (the page draws no WebGL; software GL would only cost CPU on every frame and screenshot).
  const launching = sparticuz.executablePath().then((executablePath) =>
    chromium.launch({
      executablePath,
      args: [
        ...sparticuz.args.filter(
          (arg) => arg !== '--single-process' && !/gpu|gl=|angle|swiftshader/.test(arg),
        ),
        '--disable-gpu',
      ],
    }),
  );
  sandbox = await startSandbox({ rateLimitPerMinute: 0, data: { tenants: 4, referrals: 3 } });
  host = await startHost({
    port: 0,
    timers: false,
    logger: memoryLogger(),
    queuePollIntervalMs: { min: 20, max: 200 },
    settings: {
      ...SCHEDULE_DEFAULTS,
      AzureWebJobsStorage: connection,
      ...sandboxSettings(sandbox),
      FPX_RATE_LIMIT_PER_MINUTE: '60000',
      CRM_WEBHOOK_SECRET: secrets.join(' '),
      // One FPX call per webhook, retried after about a second: an outage fails a delivery at once.
      CRM_DELIVERY_MAX_ATTEMPTS: '1',
      CRM_DELIVERY_BACKOFF_SECONDS: '1',
    },
  });
  // Syncs as the timers run them: tenants with their fan-out, then referrals twice (two runs in the history;
  // after the fan-out, so the referrals' own tenant messages never wait for a tenant the fan-out holds).
  const poll = await host.invoke('pollTenants');
  expect(poll.outcome).toBe('Succeeded');
  const { runId } = (poll.result as { fanOut: { runId: string } }).fanOut;
  const state = tableClient(connection, 'FpxSyncState');
  await waitFor(
    'the fan-out to complete',
    async () => {
      const details = await readDetailsState(state);
      return details?.runId === runId && details.lastStatus !== 'running';
    },
    { timeoutMs: 60_000, intervalMs: 50 },
  );
  expect((await host.invoke('pollReferrals')).outcome).toBe('Succeeded');
  expect((await host.invoke('pollReferrals')).outcome).toBe('Succeeded');

  // Reference data whose last run failed with an error text full of markup (error texts come from outside).
  await state.upsertEntity(
    {
      partitionKey: 'sync',
      rowKey: 'referenceData',
      lastStartedAt: new Date(Date.now() - 60_000).toISOString(),
      lastEndedAt: new Date(Date.now() - 50_000).toISOString(),
      lastStatus: 'failed',
      lastError: HTML_ERROR,
      durationMs: 10_000,
      seen: 3,
      apiCalls: 9,
    },
    'Merge',
  );

  // A webhook during an outage: queued, then failed after its one attempt, its message in the poison queue.
  const tenantId = [...sandbox.data.tenants.keys()][0] as string;
  sandbox.setOutage(true);
  try {
    const body = JSON.stringify({ tenantId, text: `ops page ${randomUUID()}`, noteCategoryId: 1 });
    const answer = await sendWebhook('notes', body, { baseUrl: host.url, secrets });
    expect(answer.status).toBe(202);
    failedDelivery = (answer.body as { deliveryId: string }).deliveryId;
    await waitFor('the delivery to fail', async () => {
      const current = await getDelivery(failedDelivery, { baseUrl: host.url, secrets });
      return (current.body as { status?: string }).status === 'failed';
    });
  } finally {
    sandbox.setOutage(false);
  }

  // Two tenants whose details ended in the poison queue.
  const poison = queueClient(connection, `${TENANT_DETAILS_QUEUE}-poison`);
  await poison.createIfNotExists();
  for (const id of [...sandbox.data.tenants.keys()].slice(1, 3)) {
    await poison.sendMessage(Buffer.from(JSON.stringify({ tenantId: id, claimed: true })).toString('base64'));
  }
  browser = await launching;
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await host?.stop();
  await sandbox?.close();
});

/** The little of the DOM the page functions below use (the project's types have no DOM library). */
interface BrowserWindow {
  document: {
    body: { getAttribute(name: string): string | null };
    documentElement: { scrollWidth: number };
    getElementById(id: string): { textContent: string | null } | null;
    querySelector(selector: string): { textContent: string | null } | null;
  };
  innerWidth: number;
  performance: { getEntriesByType(type: string): Array<{ responseEnd: number; loadEventEnd: number }> };
  __injected?: number;
}

/** The page's window, in the functions that run in the browser (page.evaluate, waitForFunction). */
declare const window: BrowserWindow;

/** The value at a `data-k` path: `streams[referrals].seen`, `queues[crm-deliveries-poison].depth`, … */
function valueAt(status: OpsStatus, key: string): unknown {
  let value: unknown = status;
  for (const part of key.match(/[^.[\]]+|\[[^\]]+\]/g) ?? []) {
    if (part.startsWith('[')) {
      const name = part.slice(1, -1);
      value = (value as Array<Record<string, unknown>>).find(
        (item) => item.stream === name || item.name === name,
      );
    } else {
      value = (value as Record<string, unknown>)?.[part];
    }
  }
  return value;
}

/** Every figure the page shows (`data-k`), with its text. */
async function figures(page: Page): Promise<Record<string, string>> {
  return page.$$eval('[data-k]', (elements) =>
    Object.fromEntries(elements.map((e) => [e.getAttribute('data-k') ?? '', e.textContent ?? ''])),
  );
}

/**
 * The page's next refresh: its clock (installed before it loaded) moves on by the refresh interval, and the
 * status it then fetched is rendered. Returns that status.
 */
async function nextRefresh(page: Page): Promise<OpsStatus> {
  const response = page.waitForResponse((r) => r.url().includes('/api/ops/status') && r.ok(), {
    timeout: 20_000,
  });
  await page.clock.runFor(REFRESH_MS);
  const rendered = (await (await response).json()) as OpsStatus;
  await page.waitForFunction(
    (at) => window.document.body.getAttribute('data-generated-at') === at,
    rendered.generatedAt,
  );
  return rendered;
}

describe('the operations page', () => {
  test('renders every fact with JavaScript off, escaping what came from outside', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    try {
      const page = await context.newPage();
      const response = await page.goto(opsUrl());
      expect(response?.status()).toBe(200);
      expect(response?.headers()['content-security-policy']).toContain("default-src 'none'");
      const shown = await figures(page);
      const facts = await status();
      // Figures that stay put between the two readings (FPX calls and the like move on their own).
      for (const key of Object.keys(shown).filter((k) => /^(streams|deliveries|certificate)/.test(k))) {
        expect({ key, text: shown[key] }).toEqual({ key, text: String(valueAt(facts, key)) });
      }
      expect(shown['streams[referrals].seen']).toBe(String(sandbox.data.referrals.length));
      expect(shown['deliveries.last24h.failed']).toBe('1');
      expect(shown['queues[fpx-tenant-details-poison].depth']).toBe('2');
      const error = page.locator('#stream-referenceData .error');
      expect(await error.textContent()).toBe(HTML_ERROR);
      expect(await page.locator('#stream-referenceData img').count()).toBe(0);
      expect(await page.locator(`[data-delivery="${failedDelivery}"] button`).textContent()).toBe('Retry');
      expect(await page.locator('#stream-referrals svg rect.bar').count()).toBe(2);
    } finally {
      await context.close();
    }
  });

  test('refreshes from /api/ops/status: its figures are the JSON it received', async () => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    try {
      const page = await context.newPage();
      const started = Date.now();
      const response = await page.goto(opsUrl(), { waitUntil: 'load' });
      const loadMs = Date.now() - started;
      const bytes = (await response?.body())?.length ?? 0;
      const timing = await page.evaluate(() => {
        const [nav] = window.performance.getEntriesByType('navigation');
        return nav ? { responseEnd: nav.responseEnd, load: nav.loadEventEnd } : undefined;
      });
      console.log(
        `ops page: ${bytes} bytes of HTML; loaded in ${Math.round(timing?.load ?? loadMs)} ms ` +
          `(response complete at ${Math.round(timing?.responseEnd ?? 0)} ms, goto ${loadMs} ms)`,
      );

      // Again with the page's timers on the test's clock (installed before the page runs any script).
      await page.clock.install();
      await page.reload({ waitUntil: 'load' });
      const rendered = await nextRefresh(page);
      const shown = await figures(page);
      expect(Object.keys(shown).length).toBeGreaterThan(30);
      for (const [key, text] of Object.entries(shown)) {
        expect({ key, text }).toEqual({ key, text: String(valueAt(rendered, key)) });
      }
      expect(await page.evaluate(() => window.__injected)).toBeUndefined();

      mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      console.log(`ops page: screenshot ${path.relative(path.join(__dirname, '..'), SCREENSHOT)}`);

      // A phone: nothing wider than the screen.
      await page.setViewportSize({ width: 390, height: 844 });
      await page.screenshot({ path: SCREENSHOT.replace('.png', '-phone.png'), fullPage: true });
      const overflow = await page.evaluate(() => {
        const { document, innerWidth } = window;
        return document.documentElement.scrollWidth - innerWidth;
      });
      expect(overflow).toBeLessThanOrEqual(0);
    } finally {
      await context.close();
    }
  });

  test('Retry on a failed delivery gets it delivered, and the page shows it', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.clock.install();
      await page.goto(opsUrl());
      const row = page.locator(`[data-delivery="${failedDelivery}"]`);
      await row.locator('button', { hasText: 'Retry' }).click();
      await page.waitForFunction(() =>
        /queued again/.test(window.document.getElementById('note')?.textContent ?? ''),
      );
      await waitFor('the delivery to be delivered', async () => {
        const current = await getDelivery(failedDelivery, { baseUrl: host.url, secrets });
        return (current.body as { status?: string }).status === 'delivered';
      });
      // The page catches up on its own, at a refresh: the delivery leaves the list and counts as delivered.
      const caughtUp = (id: string) => {
        const { document } = window;
        return (
          !document.querySelector(`[data-delivery="${id}"]`) &&
          document.querySelector('[data-k="deliveries.last24h.failed"]')?.textContent === '0' &&
          document.querySelector('[data-k="deliveries.last24h.delivered"]')?.textContent === '1'
        );
      };
      await waitFor(
        'the page to show it delivered',
        async () => {
          await nextRefresh(page);
          return page.evaluate(caughtUp, failedDelivery);
        },
        { intervalMs: 0 },
      );
      // Delivered now: nothing to retry.
      const again = await fetch(`${opsUrl()}/deliveries/${failedDelivery}/retry`, { method: 'POST' });
      expect(again.status).toBe(409);
    } finally {
      await context.close();
    }
  });

  test('Requeue empties a poison queue; its messages are processed again', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(opsUrl());
      const poison = 'fpx-tenant-details-poison';
      expect(await page.locator(`[data-k="queues[${poison}].depth"]`).textContent()).toBe('2');
      await page.locator(`[data-queue="${poison}"] button`).click();
      await page.waitForFunction(() =>
        /2 messages moved/.test(window.document.getElementById('note')?.textContent ?? ''),
      );
      await page.waitForFunction(
        (key) => window.document.querySelector(`[data-k="${key}"]`)?.textContent === '0',
        `queues[${poison}].depth`,
      );
      const properties = await queueClient(connection, poison).getProperties();
      expect(properties.approximateMessagesCount).toBe(0);
      // Only the poison queues can be requeued; anything else is named in a 400.
      const refused = await fetch(`${opsUrl()}/queues/crm-deliveries/requeue`, { method: 'POST' });
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as { message: string }).message).toContain('"crm-deliveries"');
    } finally {
      await context.close();
    }
  });

  test('a running sync shows the pages read against those FPX counts; its end adds a run to the history', async () => {
    const state = tableClient(connection, 'FpxSyncState');
    const runs = tableClient(connection, SYNC_RUNS_TABLE);
    const before = (await readSyncRuns(runs, 'tenants')).length;
    const startedAt = new Date().toISOString();
    await recordRunStart(state, 'tenants', startedAt);
    expect(await recordRunProgress(state, 'tenants', { pages: 3, items: 6, expectedCount: 20 })).toBe(true);

    const context = await browser.newContext({ javaScriptEnabled: false });
    try {
      const page = await context.newPage();
      await page.goto(opsUrl());
      expect(await page.locator('#stream-tenants .badge').first().textContent()).toBe('running');
      expect(await page.locator('[data-k="streams[tenants].progress.pagesRead"]').textContent()).toBe('3');
      expect(await page.locator('[data-k="streams[tenants].progress.expectedPages"]').textContent()).toBe(
        '10',
      );
      const tenants = (await status()).streams.find((s) => s.stream === 'tenants');
      expect(tenants).toMatchObject({
        state: 'running',
        progress: { pagesRead: 3, expectedPages: 10, items: 6, expectedCount: 20 },
      });

      await recordRunEnd(
        state,
        'tenants',
        startedAt,
        {
          seen: 20,
          created: 16,
          changed: 0,
          restored: 0,
          removed: 0,
          removalsSkipped: '',
          removalsWithheld: 0,
          unchanged: 4,
          duplicates: 0,
          pages: 10,
          apiCalls: 10,
          tableRequests: 12,
          entityWrites: 16,
          durationMs: 1_234,
          lastStatus: 'succeeded',
          lastError: '',
          lastCompletedAt: new Date().toISOString(),
        },
        runs,
      );
      const history = await readSyncRuns(runs, 'tenants');
      expect(history).toHaveLength(before + 1);
      expect(history[0]).toMatchObject({ startedAt, status: 'succeeded', created: 16, durationMs: 1_234 });
      // The status is read at most every 2 s per process: wait for a reading after the end.
      await waitFor(
        'the end in the status',
        async () => (await status()).streams.find((s) => s.stream === 'tenants')?.state === 'succeeded',
      );
      await page.reload();
      expect(await page.locator('#stream-tenants .badge').first().textContent()).toBe('succeeded');
      expect(await page.locator('#stream-tenants svg rect.bar').count()).toBe(before + 1);
    } finally {
      await context.close();
    }
  });

  test('the daily purge removes FpxSyncRuns rows older than 30 days', async () => {
    const runs = tableClient(connection, SYNC_RUNS_TABLE);
    const old = new Date(Date.now() - 31 * 24 * 3600_000).toISOString();
    const run = {
      status: 'succeeded',
      error: '',
      durationMs: 1,
      seen: 0,
      created: 0,
      changed: 0,
      removed: 0,
    };
    await recordSyncRun(runs, { stream: 'referrals', startedAt: old, endedAt: old, apiCalls: 1, ...run });
    const kept = (await readSyncRuns(runs, 'referrals')).length - 1;
    const purge = await host.invoke('purgeCrmDeliveries');
    expect(purge.outcome).toBe('Succeeded');
    expect(purge.result).toMatchObject({ syncRunsPurged: 1 });
    const left = await readSyncRuns(runs, 'referrals');
    expect(left).toHaveLength(kept);
    expect(left.every((r) => r.startedAt > old)).toBe(true);
  });

  test('the page script works as the deployment bundle builds it (keepNames, minified syntax)', async () => {
    // The browser re-renders with the server's own function, sent as its source: built as Azure gets it.
    const built = await build({
      ...BUNDLE_OPTIONS,
      entryPoints: [path.join(__dirname, '..', 'lib', 'ops', 'page.ts')],
      outfile: 'page.js',
      write: false,
      metafile: false,
      sourcemap: false,
      legalComments: 'none',
    });
    const bundled = { exports: {} as typeof import('../lib/ops/page') };
    new Function('module', 'exports', 'require', '__filename', built.outputFiles[0]?.text ?? '')(
      bundled,
      bundled.exports,
      createRequire(__filename),
      path.join(__dirname, 'page.js'),
    );
    const first = await status();
    const next: OpsStatus = {
      ...first,
      generatedAt: new Date(Date.parse(first.generatedAt) + 1).toISOString(),
    };
    const { html, nonce } = bundled.exports.renderPage(first, { base: '/api', key: 'k&<"' });
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      await page.route('http://ops.test/api/ops**', (route) =>
        route.request().url().includes('/ops/status')
          ? route.fulfill({ json: next })
          : route.fulfill({
              headers: bundled.exports.pageHeaders(nonce),
              body: html.replace('"refreshMs":5000', '"refreshMs":50'),
            }),
      );
      await page.goto('http://ops.test/api/ops');
      await page.waitForFunction(
        (at) => window.document.body.getAttribute('data-generated-at') === at,
        next.generatedAt,
      );
      expect(errors).toEqual([]);
      const shown = await figures(page);
      for (const [key, text] of Object.entries(shown)) {
        expect({ key, text }).toEqual({ key, text: String(valueAt(next, key)) });
      }
      // The key the page was opened with goes with every request it makes, encoded.
      expect(await page.locator('form.act').first().getAttribute('action')).toMatch(/\?code=k%26%3C%22$/);
    } finally {
      await context.close();
    }
  });
});
