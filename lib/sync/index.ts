/** The table-sync engine: FPX listings in, Table Storage rows out. See docs/sync.md. */
export { MAX_TRANSACTION_BYTES, MAX_TRANSACTION_ENTITIES } from './batch-writer';
export {
  DETAILS_RUNS_TABLE,
  DETAILS_STREAM,
  type DetailsRow,
  readDetailsState,
  recordTenantOutcome,
  startDetailsRun,
  type TenantOutcome,
} from './details-state';
export { fanOutTenantDetails } from './fan-out';
export { type StreamDeps, syncReferrals, syncTenants, TABLES } from './fpx-streams';
export { canonicalJson, contentHash, stableRowKey } from './hash';
export { CHECKPOINTS_TABLE } from './listing-checkpoint';
export {
  REFERENCE_DATA_STREAM,
  ReferenceDataError,
  type ReferenceDataResult,
  syncReferenceData,
} from './reference-data';
export { type ReferralSyncResult, syncReferralsAndTheirTenants } from './referral-details';
export { countTableRequests, type TableRequestCounts, withTableRequestCounts } from './request-counter';
export {
  ENTITY_BUDGET_BYTES,
  isRemoved,
  joinColumn,
  MAX_COLUMN_CHARS,
  NULL_VALUE,
  type RowMeta,
  SYSTEM_COLUMNS,
  type SyncRow,
  toRow,
} from './row';
export {
  readSyncState,
  SYNC_RUNS_TABLE,
  SYNC_STATE_PARTITION,
  type SyncResult,
  type SyncRunRecord,
  type SyncStateRow,
  type SyncStatus,
} from './sync-state';
export { type RowWrite, SyncItemError, type SyncStreamOptions, syncStream } from './sync-stream';
export { tableKeyProblem } from './table-key';
export {
  type DetailsDeps,
  enqueueTenantDetails,
  type FanOutResult,
  syncTenantDetails,
  syncTenantDetailsExclusively,
  TENANT_DETAILS_QUEUE,
  type TenantDetailsMessage,
  type TenantDetailsResult,
  tenantDetailsMessage,
} from './tenant-details';
export { TENANT_LEASES_TABLE, takeTenantLease } from './tenant-lease';
