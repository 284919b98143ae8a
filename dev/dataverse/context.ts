/**
 * Builds what Dataverse posts to a webhook: the RemoteExecutionContext in its own JSON (data-contract) shape
 * and the headers it sends with it. Used by `npm run dataverse` and the tests.
 */
import { randomUUID } from 'node:crypto';

const CONTRACTS = 'http://schemas.microsoft.com/xrm/2011/Contracts';

export interface ContextInput {
  message: 'Create' | 'Update';
  table: 'annotation' | 'contact' | string;
  id: string;
  /** Columns by logical name: a `{LogicalName, Id}` object is sent as an EntityReference, a Date as `/Date(…)/`. */
  attributes: Record<string, unknown>;
  requestId?: string;
  operationId?: string;
  correlationId?: string;
  createdOn?: Date;
  organization?: string;
}

/** `/Date(<ms>)/`, as Dataverse's serializer writes a DateTime. */
export const dataverseDate = (date: Date) => `/Date(${date.getTime()})/`;

function value(v: unknown): unknown {
  if (v instanceof Date) return dataverseDate(v);
  if (v && typeof v === 'object' && 'LogicalName' in v && 'Id' in v) {
    const ref = v as { LogicalName: string; Id: string; Name?: string };
    return {
      __type: `EntityReference:${CONTRACTS}`,
      Id: ref.Id,
      KeyAttributes: [],
      LogicalName: ref.LogicalName,
      Name: ref.Name ?? null,
      RowVersion: null,
    };
  }
  return v;
}

export function remoteExecutionContext(input: ContextInput): Record<string, unknown> {
  const attributes = Object.entries({ [`${input.table}id`]: input.id, ...input.attributes }).map(
    ([key, v]) => ({
      key,
      value: value(v),
    }),
  );
  const createdOn = input.createdOn ?? new Date();
  return {
    BusinessUnitId: randomUUID(),
    CorrelationId: input.correlationId ?? randomUUID(),
    Depth: 1,
    InitiatingUserAzureActiveDirectoryObjectId: randomUUID(),
    InitiatingUserId: randomUUID(),
    InputParameters: [
      {
        key: 'Target',
        value: {
          __type: `Entity:${CONTRACTS}`,
          Attributes: attributes,
          EntityState: null,
          FormattedValues: [],
          Id: input.id,
          KeyAttributes: [],
          LogicalName: input.table,
          RelatedEntities: [],
          RowVersion: null,
        },
      },
    ],
    IsExecutingOffline: false,
    IsInTransaction: false,
    IsOfflinePlayback: false,
    IsolationMode: 1,
    MessageName: input.message,
    Mode: 1,
    OperationCreatedOn: dataverseDate(createdOn),
    OperationId: input.operationId ?? randomUUID(),
    OrganizationId: randomUUID(),
    OrganizationName: input.organization ?? 'contoso',
    OutputParameters: input.message === 'Create' ? [{ key: 'id', value: input.id }] : [],
    OwningExtension: {
      Id: randomUUID(),
      KeyAttributes: [],
      LogicalName: 'sdkmessageprocessingstep',
      Name: `FPX: ${input.message} of ${input.table}`,
      RowVersion: null,
    },
    ParentContext: null,
    PostEntityImages: [],
    PreEntityImages: [],
    PrimaryEntityId: input.id,
    PrimaryEntityName: input.table,
    RequestId: input.requestId ?? randomUUID(),
    SecondaryEntityName: 'none',
    SharedVariables: [],
    Stage: 40,
    UserAzureActiveDirectoryObjectId: randomUUID(),
    UserId: randomUUID(),
  };
}

/**
 * Over 256 KB Dataverse leaves out ParentContext, InputParameters, PreEntityImages and PostEntityImages and
 * says so in `x-ms-dynamics-msg-size-exceeded`.
 */
export function trimmed(context: Record<string, unknown>): Record<string, unknown> {
  return { ...context, ParentContext: null, InputParameters: [], PreEntityImages: [], PostEntityImages: [] };
}

/** The headers Dataverse sends with a context; `key` as the HttpHeader option's `x-fpx-dataverse-key`. */
export function dataverseHeaders(
  context: Record<string, unknown>,
  options: { key?: string; oversized?: boolean } = {},
): Record<string, string> {
  return {
    'content-type': 'application/json',
    'x-request-id': String(context.RequestId ?? randomUUID()),
    'x-ms-correlation-request-id': String(context.CorrelationId ?? randomUUID()),
    'x-ms-dynamics-organization': `${context.OrganizationName ?? 'contoso'}.crm.dynamics.com`,
    'x-ms-dynamics-entity-name': String(context.PrimaryEntityName),
    'x-ms-dynamics-request-name': String(context.MessageName),
    ...(options.oversized ? { 'x-ms-dynamics-msg-size-exceeded': 'true' } : {}),
    ...(options.key !== undefined ? { 'x-fpx-dataverse-key': options.key } : {}),
  };
}
