import { app } from '@azure/functions';
import { openApiDocument } from '../lib/crm';
import { adaptHttp } from './http-adapter';

/** GET /api/openapi.json: the OpenAPI 3.1 document of the CRM endpoints, generated from their zod schemas. */
export function registerOpenApi(): void {
  app.http('openapi', {
    methods: ['GET'],
    route: 'openapi.json',
    authLevel: 'anonymous',
    handler: adaptHttp(() => ({ status: 200, jsonBody: openApiDocument() })),
  });
}
