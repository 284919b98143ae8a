import { createHash } from 'node:crypto';
import { z } from 'zod';
import { normalizeGuid } from '../fpx/guid';

/**
 * Dataverse's webhook body: a `RemoteExecutionContext` serialized as JSON (WCF data-contract style):
 * collections are `[{key, value}]` lists, an entity is `{LogicalName, Id, Attributes: [{key, value}]}`, a lookup
 * is an `EntityReference` `{__type: "EntityReference:…", Id, LogicalName, Name}`, a date is `"/Date(<ms>)/"`.
 * Pure: no I/O. See docs/dynamics-365.md.
 */

const keyValue = z.object({ key: z.string(), value: z.unknown() });
const guid = (what: string) =>
  z.string({ error: `expected ${what} (a GUID)` }).transform((value, ctx) => {
    const id = normalizeGuid(value);
    if (id) return id;
    ctx.addIssue({ code: 'custom', message: `expected ${what} (a GUID)` });
    return z.NEVER;
  });
const optionalGuid = z
  .string()
  .nullish()
  .transform((value) => (value ? normalizeGuid(value) : undefined))
  .transform((value) => (value && value !== EMPTY ? value : undefined));
const EMPTY = '00000000-0000-0000-0000-000000000000';

export const remoteExecutionContext = z
  .object({
    MessageName: z.string({ error: 'expected the message name, e.g. "Create"' }).min(1),
    PrimaryEntityName: z.string({ error: 'expected the table name, e.g. "contact"' }).min(1),
    PrimaryEntityId: guid('the row id'),
    RequestId: optionalGuid,
    OperationId: optionalGuid,
    CorrelationId: optionalGuid,
    OperationCreatedOn: z.string().nullish(),
    Depth: z.number().nullish(),
    Stage: z.number().nullish(),
    /** Left out by Dataverse when the message is over 256 KB (x-ms-dynamics-msg-size-exceeded). */
    InputParameters: z.array(keyValue).nullish(),
    PostEntityImages: z.array(keyValue).nullish(),
  })
  .loose();

export type RemoteExecutionContext = z.output<typeof remoteExecutionContext>;

/** A lookup value: the row it points at. */
export interface EntityReference {
  logicalName: string;
  id: string;
}

/** A row's attributes, by logical name: strings, numbers, booleans, EntityReferences, Dates, or null. */
export type Attributes = Record<string, unknown>;

export type ParsedContext =
  | { ok: true; context: RemoteExecutionContext }
  | { ok: false; errors: Record<string, string[]> };

export function parseContext(json: unknown): ParsedContext {
  const result = remoteExecutionContext.safeParse(json);
  if (result.success) return { ok: true, context: result.data };
  const errors: Record<string, string[]> = {};
  for (const issue of result.error.issues) {
    const field = issue.path.length > 0 ? issue.path.join('.') : 'body';
    errors[field] = [...(errors[field] ?? []), issue.message];
  }
  return { ok: false, errors };
}

/** `"/Date(1700000000000)/"`, `"/Date(1700000000000+0100)/"` (the offset is display only: ms are UTC). */
export function parseDataverseDate(value: unknown): Date | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^\/Date\((-?\d+)(?:[+-]\d{4})?\)\/$/.exec(value.trim());
  if (!match) return undefined;
  const date = new Date(Number(match[1]));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** An `EntityReference` value (as sent in a context, or as our Web API reader builds it); undefined otherwise. */
export function entityReference(value: unknown): EntityReference | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { LogicalName, Id } = value as { LogicalName?: unknown; Id?: unknown };
  if (typeof LogicalName !== 'string' || typeof Id !== 'string') return undefined;
  const id = normalizeGuid(Id);
  return id ? { logicalName: LogicalName, id } : undefined;
}

/** A `[{key, value}]` list as an object (the last of a repeated key wins). */
export function keyValues(list: readonly { key: string; value: unknown }[] | null | undefined): Attributes {
  return Object.fromEntries((list ?? []).map(({ key, value }) => [key, value]));
}

/**
 * The row's attributes the context carries: `InputParameters.Target` (for Update only the changed columns),
 * with a post-image's columns under them when one is registered. undefined when the context has no Target
 * (trimmed over 256 KB): then the row is read from the Web API.
 */
export function targetAttributes(context: RemoteExecutionContext): Attributes | undefined {
  const target = keyValues(context.InputParameters).Target as { Attributes?: unknown } | undefined;
  if (!target || !Array.isArray(target.Attributes)) return undefined;
  const image = Object.values(keyValues(context.PostEntityImages))[0] as { Attributes?: unknown } | undefined;
  const imageAttributes = Array.isArray(image?.Attributes) ? keyValues(image.Attributes) : {};
  return { ...imageAttributes, ...keyValues(target.Attributes as { key: string; value: unknown }[]) };
}

/** The event's own id: the request's (the same in every redelivery of it), else the operation's or correlation's. */
export function eventId(context: RemoteExecutionContext): string | undefined {
  return context.RequestId ?? context.OperationId ?? context.CorrelationId;
}

/** When the event happened, Unix seconds (orders updates of one contact); `fallback` when not given. */
export function eventTime(context: RemoteExecutionContext, fallbackMs: number): number {
  const at = parseDataverseDate(context.OperationCreatedOn);
  return Math.floor((at?.getTime() ?? fallbackMs) / 1000);
}

/** sha256 of the event's identity: a redelivered context has the same, another event of the row another. */
export function eventFingerprint(context: RemoteExecutionContext, id: string): string {
  const identity = [context.MessageName, context.PrimaryEntityName, context.PrimaryEntityId, id].join('\n');
  return createHash('sha256').update(`dataverse\n${identity}`).digest('hex');
}
