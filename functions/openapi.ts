import { app } from '@azure/functions';
import { openApiDocument } from '../lib/crm';

/** GET /api/openapi.json: the OpenAPI 3.1 document of the CRM endpoints, generated from their zod schemas. */
export function registerOpenApi(): void {
  app.http('openapi', {
    methods: ['GET'],
    route: 'openapi.json',
    authLevel: 'anonymous',
    handler: () => ({ status: 200, jsonBody: openApiDocument() }),
  });
}
