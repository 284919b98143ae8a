/** Dynamics 365 (Dataverse) webhooks → the CRM delivery pipeline. See docs/dynamics-365.md. */
import type { TokenCredential } from '@azure/identity';
import type { Config } from '../config';
import { type CrmServices, crmDeps } from '../crm';
import { TABLES } from '../sync/fpx-streams';
import { type DataverseDeps, LookupCache } from './handler';
import { ContactLinks, LINKS_TABLE } from './links';
import { DataverseWebApi } from './web-api';

export * from './context';
export {
  ANSWER_WITHIN_MS,
  type DataverseDeps,
  type DataverseSettings,
  handleDataverseWebhook,
  KEY_HEADER,
  LookupCache,
  SIZE_EXCEEDED_HEADER,
  TENANT_CACHE_MS,
} from './handler';
export { type ContactLink, ContactLinks, type ContactRow, type CreatePointer, LINKS_TABLE } from './links';
export { afterCreate, countryKey, eventKind, keys, mapContact, mapNote, noteText } from './mapping';
export { API_PATH, DataverseWebApi, WebApiError } from './web-api';

export interface DataverseServices extends CrmServices {
  config: Pick<Config, 'crm' | 'dataverse'>;
}

export interface DataverseOverrides {
  /** A local Web API fake's token source (production: the managed identity). */
  credential?: TokenCredential;
  /** In Azure the host checks `?code=` (authLevel function) before the handler runs. */
  functionKeyChecked?: boolean;
}

const built = new WeakMap<object, DataverseDeps>();

/** One set per process (per services object): the Web API client, the caches and the links table. */
export function dataverseDeps(
  services: DataverseServices,
  overrides: DataverseOverrides = {},
): DataverseDeps {
  let deps = built.get(services);
  if (!deps) {
    const { dataverse } = services.config;
    deps = {
      crm: crmDeps(services),
      settings: {
        ...dataverse,
        functionKeyChecked: overrides.functionKeyChecked ?? dataverse.functionKeyChecked,
      },
      webApi: dataverse.url
        ? new DataverseWebApi({
            url: dataverse.url,
            credential: overrides.credential,
            identityClientId: dataverse.identityClientId,
          })
        : undefined,
      links: new ContactLinks(services.table(LINKS_TABLE)),
      referenceData: services.table(TABLES.referenceData),
      cache: new LookupCache(),
    };
    built.set(services, deps);
  }
  return deps;
}
