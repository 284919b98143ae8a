import { createHash, timingSafeEqual } from 'node:crypto';
import type { TableClient } from '@azure/data-tables';
import {
  type CrmDeps,
  type CrmOperation,
  deliverWebhookInput,
  deliveryIdFor,
  ignored,
  repeatOf,
  type WebhookInput,
} from '../crm';
import { failure, invalid } from '../crm/answers';
import { claim } from '../crm/lifecycle';
import { packJson } from '../crm/packed-json';
import { normalizeGuid } from '../fpx/guid';
import { header, type PlainRequest, type PlainResponse, readBoundedBody } from '../http';
import type { Log } from '../log';
import { safeErrorMessage } from '../redact';
import { listEntitiesOrNone } from '../storage';
import { recordDeliveryFinal } from '../telemetry';
import {
  type Attributes,
  entityReference,
  eventFingerprint,
  eventId,
  eventTime,
  parseContext,
  type RemoteExecutionContext,
  targetAttributes,
} from './context';
import type { ContactLinks } from './links';
import { afterCreate, countryKey, eventKind, keys, mapContact, mapNote } from './mapping';
import { type DataverseWebApi, WebApiError } from './web-api';

/** The header that carries DATAVERSE_WEBHOOK_KEY (Dataverse's "HttpHeader" authentication). */
export const KEY_HEADER = 'x-fpx-dataverse-key';
/** Set by Dataverse when it left parts of the context out to stay under 256 KB. */
export const SIZE_EXCEEDED_HEADER = 'x-ms-dynamics-msg-size-exceeded';
/** Dataverse trims its message to 256 KB; anything far larger is not from Dataverse. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** An account's tenant id is read again after this (a column just filled in counts soon). */
export const TENANT_CACHE_MS = 60_000;
const COUNTRY_CACHE_MS = 10 * 60_000;
const RETRY_AFTER_SECONDS = 60;
/**
 * Dataverse waits 60 s for an answer: the Web API reads and the FPX attempt share this budget from the request's
 * arrival (an attempt cut short is queued, 202), leaving the rest for the storage writes around them.
 */
export const ANSWER_WITHIN_MS = 45_000;

export interface DataverseSettings {
  url?: string;
  webhookKey?: string;
  tenantIdColumn: string;
  noteCategoryId: number;
  contactDefaults: Record<string, unknown>;
  /** In Azure: the Functions host checked the function key (`?code=`, authLevel function) before we run. */
  functionKeyChecked: boolean;
}

export interface DataverseDeps {
  crm: CrmDeps;
  settings: DataverseSettings;
  /** undefined without DATAVERSE_URL. */
  webApi?: DataverseWebApi;
  links: ContactLinks;
  /** FpxReferenceData (countries: partition `countryRegions`). */
  referenceData: TableClient;
  cache: LookupCache;
}

/** Per process: accounts' tenant ids (briefly) and the country list. */
export class LookupCache {
  readonly tenants = new Map<string, { value: string | null | undefined; until: number }>();
  countries?: { byName: Map<string, string>; until: number };
}

const retryLater = (message: string): PlainResponse => ({
  ...failure(503, message),
  headers: { 'Retry-After': String(RETRY_AFTER_SECONDS) },
});

/**
 * `POST /api/dataverse`: a Dataverse webhook (a RemoteExecutionContext) → the CRM delivery pipeline (lib/crm),
 * with the same claim, queue, reconciliation and status. Answers (docs/dynamics-365.md#answers): 2xx when it is
 * done, queued or will never be sent (`ignored`); 4xx when the request can never succeed as sent; 503 with
 * Retry-After when a later try can succeed (Dataverse retries asynchronous steps).
 */
export async function handleDataverseWebhook(
  deps: DataverseDeps,
  request: PlainRequest,
  log: Log,
): Promise<PlainResponse> {
  const { settings } = deps;
  const deadline = deps.crm.now() + ANSWER_WITHIN_MS;
  if (!settings.url || !deps.webApi) {
    return failure(503, 'Dataverse webhooks are refused: DATAVERSE_URL is not set');
  }
  const auth = authenticate(request, settings);
  if (auth) return failure(401, auth);
  const body = await readBoundedBody(request.body, MAX_BODY_BYTES);
  if (!body) return failure(413, `The body is larger than ${MAX_BODY_BYTES} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (error) {
    return invalid('The body is not valid JSON', { body: [safeErrorMessage(error).slice(0, 200)] });
  }
  const parsed = parseContext(json);
  if (!parsed.ok) return invalid('The body is not a Dataverse RemoteExecutionContext', parsed.errors);
  const context = parsed.context;
  const id = eventId(context);
  if (!id)
    return invalid('The context has no RequestId, OperationId or CorrelationId', {
      RequestId: ['expected a GUID'],
    });

  const kind = eventKind(context);
  if (!kind) {
    return {
      status: 200,
      jsonBody: {
        status: 'ignored',
        message: `${context.MessageName} of ${context.PrimaryEntityName} is not sent to FPX (annotation Create, contact Create and Update are)`,
      },
    };
  }
  const sizeExceeded = header(request, SIZE_EXCEEDED_HEADER);
  const oversized = sizeExceeded !== null && sizeExceeded.trim().toLowerCase() !== 'false';
  const event = new DataverseEvent(deps, context, id, oversized, deadline, log);
  try {
    return kind === 'note' ? await event.note() : await event.contact();
  } catch (error) {
    // Down, throttled, no token, the application user without rights, a column that does not exist: each is
    // fixed in time or by an administrator, and Dataverse's retry then succeeds.
    if (error instanceof WebApiError) {
      const where = `Dataverse ${context.MessageName} of ${context.PrimaryEntityName} ${context.PrimaryEntityId}`;
      if (error.transient) log.warn(`${where}: ${error.message}; Dataverse will retry`);
      else log.error(`${where}: ${error.message}; Dataverse will retry (check DATAVERSE_* settings)`);
      return retryLater(`Dataverse's Web API could not be read: ${error.message}`);
    }
    throw error;
  }
}

/** undefined when the request may pass; otherwise why not. The key is compared in constant time. */
function authenticate(request: PlainRequest, settings: DataverseSettings): string | undefined {
  const given = header(request, KEY_HEADER);
  if (given !== null) {
    if (!settings.webhookKey) return `${KEY_HEADER} was sent, but no DATAVERSE_WEBHOOK_KEY is configured`;
    const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();
    return timingSafeEqual(digest(given), digest(settings.webhookKey))
      ? undefined
      : `${KEY_HEADER} does not match`;
  }
  if (settings.functionKeyChecked) return undefined;
  return settings.webhookKey
    ? `${KEY_HEADER} is missing`
    : `No ${KEY_HEADER} (DATAVERSE_WEBHOOK_KEY is not set) and no function key check here (only Azure checks ?code=)`;
}

/** One event on its way: reads what the context lacks, keys it, and hands it to the pipeline. */
class DataverseEvent {
  private readonly fingerprint: string;
  private readonly rowId: string;

  constructor(
    private readonly deps: DataverseDeps,
    private readonly context: RemoteExecutionContext,
    private readonly id: string,
    private readonly oversized: boolean,
    private readonly deadline: number,
    private readonly log: Log,
  ) {
    this.fingerprint = eventFingerprint(context, id);
    this.rowId = context.PrimaryEntityId;
  }

  private get webApi(): DataverseWebApi {
    return this.deps.webApi as DataverseWebApi;
  }

  /** What is left of the answer's time budget (ANSWER_WITHIN_MS), on the injected clock. */
  private remainingMs(): number {
    return Math.max(0, this.deadline - this.deps.crm.now());
  }

  /** Aborts a Web API read (its token included) when the answer's time budget runs out. */
  private budget(): AbortSignal {
    return AbortSignal.timeout(this.remainingMs());
  }

  /** An annotation regarding an account → an FPX note on the account's tenant. */
  async note(): Promise<PlainResponse> {
    const key = keys.note(this.rowId);
    const repeat = await this.repeat(key);
    if (repeat) return repeat;
    const attributes = await this.attributes(() => this.webApi.annotation(this.rowId, this.budget()));
    if (!attributes)
      return this.ignore(key, 'createNote', `annotation ${this.rowId} is not in Dataverse (deleted?)`);
    const regarding = entityReference(attributes.objectid);
    if (regarding?.logicalName !== 'account') {
      return this.ignore(
        key,
        'createNote',
        `the note is about ${regarding ? `a ${regarding.logicalName}` : 'no row'}, not an account`,
      );
    }
    const tenant = await this.tenantOf(regarding.id);
    if (!tenant.ok) return this.ignore(key, 'createNote', tenant.reason);
    const note = mapNote(attributes, this.deps.settings.noteCategoryId);
    if (!note.ok) return this.ignore(key, 'createNote', note.reason);
    return this.deliver(key, 'notes', { op: 'createNote', tenantId: tenant.tenantId, note: note.value });
  }

  /**
   * A contact's Create or Update → FPX contact create, or update once it is linked (DataverseLinks). Only one
   * create per Dataverse contact runs at a time, and a new one only after the previous made no FPX contact: the
   * create of the contact's current generation (DataverseLinks' pointer; the first is generation 0) is claimed
   * once, by its key; while it is on its way, another event of the contact is answered 503 so Dataverse brings
   * it again once the link exists. After a create that ended without a contact for good (rejected, ignored), the
   * event that moves the pointer on (an insert or an ETag-conditional update: one event wins) creates under the
   * next generation's key; the loser is answered 503. A `failed` create is an operator's (see afterCreate).
   */
  async contact(): Promise<PlainResponse> {
    const { links, crm } = this.deps;
    const row = await links.read(this.rowId);
    let key = keys.contactCreateAt(this.rowId, row.create.generation);
    const current = await repeatOf(crm, deliveryIdFor(key), this.fingerprint);
    const mine = current?.existing.fingerprint === this.fingerprint;
    // This very event again (a redelivery): its first answer.
    if (current && mine && 'answer' in current) return this.answer(current.answer);
    if (row.link) return this.update(row.link.fpxContactId);

    // Without a delivery under the key (nobody claimed it yet, an event that moved the pointer stopped before it
    // claimed, or it was purged RETENTION_DAYS after it ended), or with this event's own (a takeover), this event
    // claims it below: the delivery's insert lets one event only.
    if (current && !mine) {
      const { deliveryId, status, unknownSince } = current.existing;
      switch (afterCreate(status)) {
        case 'wait':
          return retryLater(
            `Contact ${this.rowId}: its create is on its way to FPX (delivery ${deliveryId}); this change follows once it is there`,
          );
        case 'operator':
          return this.ignore(
            keys.contactUpdate(this.rowId, this.id),
            'createContact',
            `its create, delivery ${deliveryId}, failed${unknownSince ? ' after an attempt whose outcome is unknown' : ''}: it may be in FPX or be retried, so the contact is not created again; retry that delivery on the operations page (it looks in FPX first), and the contact's next change updates it`,
          );
        case 'next': {
          key = keys.contactCreateAt(this.rowId, row.create.generation + 1);
          if (!(await links.advanceCreate(this.rowId, row.create, deliveryIdFor(key), crm.now()))) {
            return retryLater(
              `Contact ${this.rowId}: another event of it is starting its create just now; this change follows`,
            );
          }
        }
      }
    }
    const mapped = await this.contactFields('create', key, 'createContact');
    if ('answer' in mapped) return mapped.answer;
    return this.deliver(key, 'contacts', {
      op: 'createContact',
      tenantId: mapped.tenantId,
      contact: mapped.contact,
      dataverseContactId: this.rowId,
    });
  }

  private async update(fpxContactId: string): Promise<PlainResponse> {
    const key = keys.contactUpdate(this.rowId, this.id);
    const repeat = await this.repeat(key);
    if (repeat) return repeat;
    const mapped = await this.contactFields('update', key, 'updateContact');
    if ('answer' in mapped) return mapped.answer;
    return this.deliver(key, 'contacts', {
      op: 'updateContact',
      tenantId: mapped.tenantId,
      contactId: fpxContactId,
      contact: { phone: null, ...mapped.contact },
    });
  }

  /** The contact as FPX takes it, on its parent account's tenant; or the answer recording why not. */
  private async contactFields(
    form: 'create' | 'update',
    key: string,
    op: CrmOperation['op'],
  ): Promise<
    | { tenantId: string; contact: Extract<CrmOperation, { op: 'createContact' }>['contact'] }
    | { answer: PlainResponse }
  > {
    // An Update's Target holds only the changed columns: the whole row is read.
    const fromContext = this.context.MessageName.toLowerCase() === 'create';
    const attributes = await this.attributes(
      () => this.webApi.contact(this.rowId, this.budget()),
      fromContext,
    );
    if (!attributes)
      return { answer: await this.ignore(key, op, `contact ${this.rowId} is not in Dataverse (deleted?)`) };
    const parent = entityReference(attributes.parentcustomerid);
    if (parent?.logicalName !== 'account') {
      return {
        answer: await this.ignore(
          key,
          op,
          `the contact's company (parentcustomerid) is ${parent ? `a ${parent.logicalName}` : 'not set'}, not an account`,
        ),
      };
    }
    const tenant = await this.tenantOf(parent.id);
    if (!tenant.ok) return { answer: await this.ignore(key, op, tenant.reason) };
    const country =
      typeof attributes.address1_country === 'string'
        ? await this.countryId(attributes.address1_country)
        : undefined;
    const contact = mapContact(attributes, country, this.deps.settings.contactDefaults, form);
    if (!contact.ok) return { answer: await this.ignore(key, op, contact.reason) };
    return { tenantId: tenant.tenantId, contact: contact.value };
  }

  /** The row's attributes from the context, or from the Web API when the context lacks them (trimmed over 256 KB). */
  private async attributes(
    read: () => Promise<Attributes | undefined>,
    fromContext = true,
  ): Promise<Attributes | undefined> {
    const carried = fromContext && !this.oversized ? targetAttributes(this.context) : undefined;
    if (carried) return carried;
    if (this.oversized)
      this.log.log(
        `Dataverse context for ${this.context.PrimaryEntityName} ${this.rowId} was trimmed (over 256 KB): reading the row`,
      );
    return read();
  }

  /** The account's FPX tenant id (DATAVERSE_TENANT_ID_COLUMN), cached for TENANT_CACHE_MS. */
  private async tenantOf(
    accountId: string,
  ): Promise<{ ok: true; tenantId: string } | { ok: false; reason: string }> {
    const { cache, settings, crm } = this.deps;
    const now = crm.now();
    let entry = cache.tenants.get(accountId);
    if (!entry || entry.until <= now) {
      entry = {
        value: await this.webApi.accountColumn(accountId, settings.tenantIdColumn, this.budget()),
        until: now + TENANT_CACHE_MS,
      };
      cache.tenants.set(accountId, entry);
    }
    const column = settings.tenantIdColumn;
    if (entry.value === undefined) return { ok: false, reason: `account ${accountId} is not in Dataverse` };
    if (entry.value === null)
      return { ok: false, reason: `account ${accountId} has no FPX tenant id (column ${column} is empty)` };
    const tenantId = normalizeGuid(entry.value);
    if (!tenantId) return { ok: false, reason: `account ${accountId}: ${column} is not a GUID` };
    return { ok: true, tenantId };
  }

  /** The FPX country id whose name matches (FpxReferenceData, partition countryRegions); undefined when none does. */
  private async countryId(name: string): Promise<string | undefined> {
    const { cache, crm, referenceData } = this.deps;
    const now = crm.now();
    if (!cache.countries || cache.countries.until <= now) {
      const byName = new Map<string, string>();
      const rows = listEntitiesOrNone<Record<string, unknown>>(referenceData, {
        queryOptions: { filter: `PartitionKey eq 'countryRegions'` },
      });
      for await (const row of rows) {
        if (row.removedAt || typeof row.name !== 'string') continue;
        byName.set(countryKey(row.name), String(row.rowKey));
      }
      cache.countries = { byName, until: now + COUNTRY_CACHE_MS };
    }
    const id = cache.countries.byName.get(countryKey(name));
    if (!id)
      this.log.warn(
        `Dataverse contact ${this.rowId}: country "${name}" is not one of FPX's; sent without it`,
      );
    return id;
  }

  /** The first answer to this key, if it was claimed before by this very event. */
  private async repeat(key: string): Promise<PlainResponse | undefined> {
    const repeat = await repeatOf(this.deps.crm, deliveryIdFor(key), this.fingerprint);
    return repeat && 'answer' in repeat ? this.answer(repeat.answer) : undefined;
  }

  private deliver(
    key: string,
    endpoint: 'notes' | 'contacts',
    operation: CrmOperation,
  ): Promise<PlainResponse> {
    const { crm } = this.deps;
    const input: WebhookInput = {
      webhookId: key,
      signedAt: eventTime(this.context, crm.now()),
      operation,
      fingerprint: this.fingerprint,
    };
    // The attempt gets what is left of the budget: cut short, its outcome is unknown and it is queued (202),
    // reconciled by the queue; a long wait for a call slot queues it at once.
    const left = this.remainingMs();
    const policy = {
      ...crm.policy,
      attemptTimeoutMs: Math.min(crm.policy.attemptTimeoutMs, left),
      httpMaxWaitMs: Math.min(crm.policy.httpMaxWaitMs, left),
    };
    return deliverWebhookInput({ ...crm, policy }, endpoint, input, this.log).then((answer) =>
      this.answer(answer),
    );
  }

  /** Recorded as `ignored` (final, visible in the delivery status), acknowledged 200: Dataverse does not retry. */
  private async ignore(key: string, op: CrmOperation['op'], reason: string): Promise<PlainResponse> {
    const { crm } = this.deps;
    const deliveryId = deliveryIdFor(key);
    const now = crm.now();
    const fields = {
      deliveryId,
      webhookId: key,
      endpoint: op === 'createNote' ? ('notes' as const) : ('contacts' as const),
      op,
      tenantId: '',
      fingerprint: this.fingerprint,
      signedAt: eventTime(this.context, now),
      target: '',
      ...claim(now, 0),
    };
    const created = await crm.store.create(
      {
        ...fields,
        status: 'ignored',
        leaseUntil: '',
        attemptStartedAt: '',
        completedAt: fields.createdAt,
        lastError: reason,
        answerStatus: 200,
      },
      await packJson({ ignored: reason }),
    );
    if (!created) return (await this.repeat(key)) ?? retryLater(`${key} is being processed`);
    recordDeliveryFinal('ignored', fields.endpoint);
    this.log.warn(
      `Dataverse ${this.context.MessageName} of ${this.context.PrimaryEntityName} ${this.rowId}: ignored: ${reason}`,
    );
    return ignored(deliveryId, reason);
  }

  /**
   * The pipeline's answer as Dataverse should get it. Its 409 (still in flight) becomes 503, which Dataverse
   * retries; so does a 422 that is not FPX's refusal (`rejected`) but our key claimed by another event of the
   * row (a Create and an Update of a new contact racing for its create): retried, the event finds the link and
   * updates, where a 422 could end the job and lose the change.
   */
  private answer(response: PlainResponse): PlainResponse {
    const body = response.jsonBody as { status?: unknown } | undefined;
    if (response.status === 409 || (response.status === 422 && body?.status !== 'rejected'))
      return {
        ...response,
        status: 503,
        headers: { ...response.headers, 'Retry-After': String(RETRY_AFTER_SECONDS) },
      };
    return response;
  }
}
