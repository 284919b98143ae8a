// Types of provision.mjs (plain JavaScript so that azd can run it before `npm install`), for test/infra.test.ts.
export const WEBHOOK_SECRET_NAME: string;
export const EVENTS_SECRET_NAME: string;
export const NEW_VAULT_RETENTION_DAYS: number;

export class HookError extends Error {}

export interface ArmResponse {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: Resource Manager JSON
  body: any;
}

export interface Arm {
  get(path: string): Promise<ArmResponse>;
  delete(path: string): Promise<ArmResponse>;
  // biome-ignore lint/suspicious/noExplicitAny: Resource Manager JSON
  list(path: string): Promise<any[] | undefined>;
}

export function armClient(options: {
  token: () => Promise<string>;
  endpoint?: string;
  fetchImpl?: typeof fetch;
}): Arm;

export interface VaultState {
  vaultName: string | undefined;
  vaultExists: boolean;
  secretExists: boolean;
  eventsSecretExists: boolean;
  softDeleteRetentionInDays: number;
}

export function inspectVault(
  arm: Arm,
  where: { subscriptionId: string; environmentName: string; location: string },
): Promise<VaultState>;

export function parseBool(name: string, value: string | undefined, fallback: boolean): boolean;
export function ipRule(text: string): string;
export function lookupPublicIp(fetchImpl?: typeof fetch): Promise<string>;

export function preprovision(
  env: Record<string, string | undefined>,
  deps: {
    arm: Arm;
    lookupIp?: () => Promise<string>;
    setEnv: (name: string, value: string) => void;
    log?: (line: string) => void;
  },
): Promise<Record<string, string>>;

export function postprovision(
  env: Record<string, string | undefined>,
  deps: { arm: Arm; log?: (line: string) => void },
): Promise<string[]>;
