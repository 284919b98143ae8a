import type { TestProject } from 'vitest/node';
import { type AzuriteInstance, startAzurite } from '../dev/azurite';

declare module 'vitest' {
  export interface ProvidedContext {
    storageConnection: string;
  }
}

let azurite: AzuriteInstance | undefined;

/** One in-memory Azurite for the whole run; suites keep apart by table and queue names. */
export async function setup(project: TestProject) {
  azurite = await startAzurite();
  project.provide('storageConnection', azurite.connectionString);
}

export async function teardown() {
  await azurite?.stop();
}
