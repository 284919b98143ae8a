/**
 * The composition root, loaded by the Azure Functions host (and by dev/host locally):
 * reads the settings once, builds the shared clients, and registers every function with them.
 * A bad setting throws here, before anything is registered, with one message naming it.
 */
import { loadConfig } from '../lib/config';
import { registerCertExpiryCheck } from './certExpiryCheck';
import { registerHealth } from './health';
import { registerPollReferrals } from './pollReferrals';
import { registerPollTenants } from './pollTenants';
import { buildServices } from './services';
import { registerSyncTenantDetails } from './syncTenantDetails';

const services = buildServices(loadConfig());

registerPollReferrals(services);
registerPollTenants(services);
registerSyncTenantDetails(services);
registerHealth(services);
registerCertExpiryCheck(services);
