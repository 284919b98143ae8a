import type { SandboxData, TenantDetails } from './data';
import { notFound, type Query, type Reply, validationReply } from './http';
import { canonicalGuid } from './random';
import { asObjectBody, Body } from './validation';

/** Who is calling, from an unverified Bearer JWT (FPX uses `sub` to tell users apart). */
export interface Caller {
  sub?: string;
  name?: string;
}

export interface RequestContext {
  method: string;
  /** Path parameters by name, as sent. */
  params: Record<string, string>;
  query: Query;
  /** Parsed JSON body; undefined when the request had none. */
  body: unknown;
  data: SandboxData;
  caller: Caller;
}

export type Handler = (context: RequestContext) => Reply;

/** The tenant named by the `tenantId` path parameter, in any GUID form; or the 400/404 to answer. */
export function tenantFor(context: RequestContext): TenantDetails | Reply {
  const raw = context.params.tenantId ?? '';
  if (!canonicalGuid(raw)) return validationReply({ TenantId: [`The value '${raw}' is not valid.`] });
  return context.data.tenants.get(raw) ?? notFound(`Tenant ${raw}`);
}

export function isReply(value: unknown): value is Reply {
  return typeof value === 'object' && value !== null && 'status' in value && typeof value.status === 'number';
}

/** The JSON object body, or the 400 to answer. */
export function objectBody(context: RequestContext): Body | Reply {
  if (context.body === undefined) return validationReply({ Body: ['A JSON request body is required.'] });
  const body = asObjectBody(context.body);
  return body instanceof Body ? body : validationReply(body);
}

export function decodeCaller(authorization: string | undefined): Caller {
  const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
  const payload = token?.split('.')[1];
  if (!payload) return {};
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    return {
      sub: typeof claims.sub === 'string' ? claims.sub : undefined,
      name: typeof claims.name === 'string' ? claims.name : undefined,
    };
  } catch {
    return {}; // not a JWT: FPX would refuse it, the sandbox just treats the caller as anonymous
  }
}
