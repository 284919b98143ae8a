import { setTimeout as sleep } from 'node:timers/promises';
import type { Log } from '../log';
import { safeErrorMessage } from '../redact';

const RETRY_DELAYS_MS = [100, 1_000];

/**
 * Final records the webhook path writes after answering (write-behind): the answer does not wait for a
 * second Table Storage round trip. Until the write lands, a repeat of the webhook-id on another instance
 * sees the delivery still leased (409, "repeat later"); on this instance it waits for the write. Should
 * the instance die in those milliseconds, FPX has the request and the record stays leased: a repeat takes
 * it over after the lease and finds the create in FPX (reconciliation), so nothing is sent twice.
 */
export class PendingWrites {
  private readonly writes = new Map<string, Promise<void>>();

  constructor(private readonly retryDelaysMs: readonly number[] = RETRY_DELAYS_MS) {}

  /** Starts `write` for delivery `id`, retrying twice, without holding up the caller. */
  start(id: string, write: () => Promise<void>, log: Log): void {
    const run = (async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          await write();
          return;
        } catch (error) {
          const delay = this.retryDelaysMs[attempt];
          if (delay === undefined) {
            log.error(`Delivery ${id}: the final record could not be written: ${safeErrorMessage(error)}`);
            return;
          }
          await sleep(delay);
        }
      }
    })();
    this.writes.set(id, run);
    void run.finally(() => {
      if (this.writes.get(id) === run) this.writes.delete(id);
    });
  }

  /** Resolves once this process's write for `id`, if any, has finished. */
  async settled(id: string): Promise<void> {
    await this.writes.get(id);
  }

  /** Resolves once every write started so far has finished. */
  async drain(): Promise<void> {
    await Promise.all(this.writes.values());
  }
}
