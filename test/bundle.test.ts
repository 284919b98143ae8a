/**
 * The deployment bundle, loaded the way Azure loads it: a fresh esbuild bundle of functions/index.ts (dev/build.ts)
 * is evaluated with dev/host's `@azure/functions-core` recorder installed, and what it registers must be exactly
 * what the TypeScript entry registers, and every registration must match the contract's trigger.
 * Contract functions the entry does not register yet are listed as todo, never passed silently.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, inject, test } from 'vitest';
import { buildBundle, EXTERNALS, TELEMETRY_SDK } from '../dev/build';
import { DEFAULT_ENTRY, loadApp } from '../dev/host/app-loader';
import { triggerBindingOf } from '../dev/host/function-info';
import type { AppRegistration, RegisteredFunction } from '../dev/host/functions-core';
import { memoryLogger } from '../dev/host/logger';
import { applySettingsToEnv } from '../dev/host/settings';
import { invokeFunction } from '../dev/invoke';
import { sandboxSettings, startSandbox } from '../dev/sandbox';

type ContractTrigger =
  | { type: 'timerTrigger'; schedule: string }
  | { type: 'queueTrigger'; queueName: string }
  | { type: 'httpTrigger'; methods: string[]; route: string };

/** docs/contract.md, "Functions". */
const CONTRACT: Record<string, ContractTrigger> = {
  pollReferrals: { type: 'timerTrigger', schedule: '%POLL_REFERRALS_SCHEDULE%' },
  pollTenants: { type: 'timerTrigger', schedule: '%POLL_TENANTS_SCHEDULE%' },
  syncTenantDetails: { type: 'queueTrigger', queueName: 'fpx-tenant-details' },
  crmNotes: { type: 'httpTrigger', methods: ['POST'], route: 'crm/notes' },
  crmContacts: { type: 'httpTrigger', methods: ['POST'], route: 'crm/contacts' },
  crmEntitlements: { type: 'httpTrigger', methods: ['POST'], route: 'crm/entitlements' },
  crmDelivery: { type: 'httpTrigger', methods: ['GET'], route: 'crm/deliveries/{id}' },
  deliverCrmRequest: { type: 'queueTrigger', queueName: 'crm-deliveries' },
  certExpiryCheck: { type: 'timerTrigger', schedule: '%CERT_CHECK_SCHEDULE%' },
  syncReferenceData: { type: 'timerTrigger', schedule: '%REFERENCE_DATA_SCHEDULE%' },
  health: { type: 'httpTrigger', methods: ['GET'], route: 'health' },
  // Hardening issue, item 8: the full health checks, behind the function key (README "Operations").
  healthDetails: { type: 'httpTrigger', methods: ['GET'], route: 'health/details' },
  // Added beyond the first contract (docs/contract.md "Functions"): the webhooks' OpenAPI document and the
  // daily purge of finished deliveries past their 7-day retention.
  openapi: { type: 'httpTrigger', methods: ['GET'], route: 'openapi.json' },
  purgeCrmDeliveries: { type: 'timerTrigger', schedule: '0 30 3 * * *' },
  recoverCrmDeliveries: { type: 'timerTrigger', schedule: '0 */5 * * * *' },
  // The operations page issue: the page, its facts as JSON, and its two repairs.
  opsPage: { type: 'httpTrigger', methods: ['GET'], route: 'ops' },
  opsStatus: { type: 'httpTrigger', methods: ['GET'], route: 'ops/status' },
  opsRetryDelivery: { type: 'httpTrigger', methods: ['POST'], route: 'ops/deliveries/{id}/retry' },
  opsRequeue: { type: 'httpTrigger', methods: ['POST'], route: 'ops/queues/{queue}/requeue' },
  // Dynamics 365 issue (#18): Dataverse's own webhooks.
  dataverseWebhook: { type: 'httpTrigger', methods: ['POST'], route: 'dataverse' },
  // Issue 19: referral and tenant changes pushed to the CRM as signed events.
  deliverCrmEvent: { type: 'queueTrigger', queueName: 'crm-events' },
};

/** The trigger as registered, in the contract's terms (unresolved `%SETTING%` references kept). */
function registeredTrigger(fn: RegisteredFunction): ContractTrigger & { connection?: unknown } {
  const [, binding] = triggerBindingOf(fn);
  switch (binding.type) {
    case 'timerTrigger':
      return { type: 'timerTrigger', schedule: String(binding.schedule) };
    case 'queueTrigger':
      return { type: 'queueTrigger', queueName: String(binding.queueName), connection: binding.connection };
    case 'httpTrigger':
      return {
        type: 'httpTrigger',
        methods: ((binding.methods as string[] | undefined) ?? []).map((m) => m.toUpperCase()).sort(),
        route: String(binding.route ?? fn.metadata.name),
      };
    default:
      throw new Error(`${fn.metadata.name}: trigger ${binding.type} is not in the contract`);
  }
}

// The app's settings: Azurite and the FPX sandbox, so that the bundle can also serve a real invocation.
const sandbox = await startSandbox({ data: { tenants: 2, referrals: 2 } });
const settings = {
  AzureWebJobsStorage: inject('storageConnection'),
  ...sandboxSettings(sandbox),
  CRM_WEBHOOK_SECRET: `whsec_${randomBytes(24).toString('base64')}`,
};
const restoreEnv = applySettingsToEnv(settings);

// Built and loaded at collection time, so that each contract function becomes a test or a todo.
const outdir = mkdtempSync(path.join(os.tmpdir(), 'fpx-bundle-'));
const bundle = await buildBundle(outdir);
const fromBundle: AppRegistration = await loadApp(bundle.file);
const fromSources: AppRegistration = await loadApp(DEFAULT_ENTRY);

afterAll(async () => {
  restoreEnv();
  rmSync(outdir, { recursive: true, force: true });
  await sandbox.close();
});

describe('the deployment package', () => {
  test('is one CommonJS file with only the worker-provided module left external', () => {
    const code = readFileSync(bundle.file, 'utf8');
    const required = new Set([...code.matchAll(/\brequire\("([^"]+)"\)/g)].map((m) => m[1] as string));
    // Besides the worker's module, only the telemetry SDK's own file, beside it (loaded when configured).
    expect([...required].filter((id) => !id.startsWith('node:') && !isBuiltin(id))).toEqual([
      ...EXTERNALS,
      `./${TELEMETRY_SDK.file}`,
    ]);
    expect(existsSync(path.join(outdir, TELEMETRY_SDK.file))).toBe(true);
    expect(code).not.toMatch(/\bimport\.meta\b/);
  });

  test('carries host.json and a package.json whose main is the bundle', () => {
    expect(JSON.parse(readFileSync(path.join(outdir, 'package.json'), 'utf8'))).toMatchObject({
      main: 'index.js',
    });
    expect(readFileSync(path.join(outdir, 'host.json'), 'utf8')).toBe(
      readFileSync(path.join(__dirname, '..', 'host.json'), 'utf8'),
    );
    expect(existsSync(path.join(outdir, 'node_modules'))).toBe(false);
  });

  test('the project package.json main points Azure at dist/index.js', () => {
    const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as {
      main?: string;
    };
    expect(pkg.main).toBe('dist/index.js');
  });
});

describe('the bundle at work', () => {
  // Loading is not enough: a bundled dependency may still fail when first used (files, wasm, mTLS).
  test('serves GET /api/health: storage, FPX over mutual TLS and the certificate all answer', async () => {
    const outcome = await invokeFunction(bundle.file, 'health', undefined, settings, {
      logger: memoryLogger(),
    });
    expect(outcome.outcome).toBe('Succeeded');
    expect(outcome.result).toMatchObject({ status: 200 });
    expect(sandbox.requests.at(-1)?.clientCertThumbprint).toBe(sandbox.certs.client.thumbprint);
  });
});

describe('registrations of the bundle', () => {
  test('are exactly those of functions/index.ts, binding for binding', () => {
    expect([...fromBundle.functions.keys()]).toEqual([...fromSources.functions.keys()]);
    for (const [name, fn] of fromSources.functions) {
      expect(fromBundle.functions.get(name)?.metadata.bindings, name).toEqual(fn.metadata.bindings);
    }
    expect(fromBundle.functions.size).toBeGreaterThan(0);
  });

  test('include nothing outside the contract', () => {
    const outside = [...fromBundle.functions.keys()].filter((name) => !(name in CONTRACT));
    // A new function is a contract change: add it to docs/contract.md "Functions", the README and CONTRACT above.
    expect(outside, 'registered but not in the contract').toEqual([]);
  });

  for (const [name, expected] of Object.entries(CONTRACT)) {
    const fn = fromBundle.functions.get(name);
    if (!fn) {
      test.todo(`${name}: not registered by functions/index.ts yet (contract: ${describeTrigger(expected)})`);
      continue;
    }
    test(`${name}: ${describeTrigger(expected)}`, () => {
      const { connection, ...trigger } = registeredTrigger(fn);
      expect(trigger).toEqual(expected);
      // Queue triggers use AzureWebJobsStorage, whose identity-based settings the Bicep template writes.
      if (expected.type === 'queueTrigger')
        expect([undefined, '', 'AzureWebJobsStorage']).toContain(connection);
    });
  }
});

function describeTrigger(trigger: ContractTrigger): string {
  switch (trigger.type) {
    case 'timerTrigger':
      return `timer ${trigger.schedule}`;
    case 'queueTrigger':
      return `queue ${trigger.queueName}`;
    case 'httpTrigger':
      return `HTTP ${trigger.methods.join(',')} /api/${trigger.route}`;
  }
}
