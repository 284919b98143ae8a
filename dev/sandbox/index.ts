export type {
  Contact,
  ContactEntry,
  EntitlementRecord,
  Note,
  NoteEntry,
  PartnerTenant,
  Referral,
  ReferralWorkload,
  SandboxData,
  ServiceEntitlements,
  TenantDetails,
} from './data';
export { emptyTenantDetails, TenantDirectory } from './data';
export type { FaultMatch, FaultProbabilities, ScriptedFault } from './faults';
export { type DataSizes, generateData } from './generate';
export { MAX_PAGE_SIZE } from './http';
export { MAX_NOTE_LENGTH } from './notes';
export { canonicalGuid } from './random';
export { GUID_CONTACT_TYPE_ID, GUIDE_SAMPLE_GUID, type NamedId, type ReferenceData } from './reference';
export { API_BASE } from './routes';
export { type RequestLogEntry, type Sandbox, type SandboxOptions, startSandbox } from './server';
export { sandboxSettings } from './settings';
