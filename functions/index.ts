/**
 * The composition root, loaded by the Azure Functions host (and by dev/host locally):
 * reads the settings once, builds the shared clients, and registers every function with them.
 * A bad setting throws here, before anything is registered, with one message naming it.
 */
import { loadConfig } from '../lib/config';
import { registerHealth } from './health';
import { buildServices } from './services';

const services = buildServices(loadConfig());

registerHealth(services);
