/**
 * The composition root, loaded by the Azure Functions host (and by dev/host locally):
 * reads the settings once, builds the shared clients, and registers every function with them.
 * A bad setting throws here, before anything is registered, with one message naming it.
 */
import * as functionsModule from '@azure/functions';
import { loadConfig } from '../lib/config';
import { crmDeps } from '../lib/crm';
import { queueStatuses } from '../lib/ops';
import { observeGauges, useTelemetryClock } from '../lib/telemetry';
import { startTelemetry } from '../lib/telemetry/setup';
import { registerCertExpiryCheck } from './certExpiryCheck';
import { registerCrmContacts } from './crmContacts';
import { registerCrmDelivery } from './crmDelivery';
import { registerCrmEntitlements } from './crmEntitlements';
import { registerCrmNotes } from './crmNotes';
import { registerDataverseWebhook } from './dataverseWebhook';
import { registerDeliverCrmEvent } from './deliverCrmEvent';
import { registerDeliverCrmRequest } from './deliverCrmRequest';
import { registerHealth } from './health';
import { registerHealthDetails } from './healthDetails';
import { registerOpenApi } from './openapi';
import { registerOpsPage } from './opsPage';
import { registerOpsRequeue } from './opsRequeue';
import { registerOpsRetryDelivery } from './opsRetryDelivery';
import { registerOpsStatus } from './opsStatus';
import { registerPollReferrals } from './pollReferrals';
import { registerPollTenants } from './pollTenants';
import { registerPurgeCrmDeliveries } from './purgeCrmDeliveries';
import { registerRecoverCrmDeliveries } from './recoverCrmDeliveries';
import { buildServices } from './services';
import { registerSyncReferenceData } from './syncReferenceData';
import { registerSyncTenantDetails } from './syncTenantDetails';

const config = loadConfig();
// Before any registration: the worker takes the OpenTelemetry capability only during start-up.
startTelemetry(config.telemetry, functionsModule);
const services = buildServices(config);
useTelemetryClock(services.clock);
if (config.telemetry.exporter !== 'none') {
  observeGauges({
    queueDepths: () => queueStatuses((name) => services.queueService.getQueueClient(name)),
    certificateNotAfter: async () => (await services.certificates.current()).notAfter,
  });
}

registerPollReferrals(services);
registerPollTenants(services);
registerSyncTenantDetails(services);
registerSyncReferenceData(services);
registerHealth(services);
registerHealthDetails(services);
registerCertExpiryCheck(services);
registerCrmNotes(services);
registerCrmContacts(services);
registerCrmEntitlements(services);
registerCrmDelivery(services);
registerDeliverCrmRequest(services);
registerOpenApi();
registerPurgeCrmDeliveries(services);
registerRecoverCrmDeliveries(services);
registerOpsPage(services);
registerOpsStatus(services);
registerOpsRetryDelivery(services);
registerOpsRequeue(services);
registerDataverseWebhook(services);
registerDeliverCrmEvent(services);

// Webhook answers go out before their final record is written: let those writes land before the worker stops.
functionsModule.app.hook.appTerminate(() => crmDeps(services).pending.drain());
