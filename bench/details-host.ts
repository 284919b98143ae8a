/**
 * A second Functions "instance" for bench/details: the local host with the app's own composition root in a
 * process of its own, polling the same `fpx-tenant-details` queue (HTTP, timers off). Settings come from the
 * environment; it says `ready` on IPC and stops when the parent disconnects.
 */
import { DEFAULT_ENTRY, startHost } from '../dev/host/host';
import { memoryLogger } from '../dev/host/logger';
import { SCHEDULE_DEFAULTS } from '../lib/config';

async function main() {
  const host = await startHost({
    entry: DEFAULT_ENTRY,
    port: 0,
    settings: { ...SCHEDULE_DEFAULTS, ...process.env },
    timers: false,
    queuePollIntervalMs: { min: 20, max: 500 },
    logger: memoryLogger(),
  });
  process.send?.('ready');
  process.on('disconnect', () => {
    void host.stop().then(() => process.exit(0));
  });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
