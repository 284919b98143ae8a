import type { DequeuedMessageItem, QueueClient } from '@azure/storage-queue';
import type { RegisteredFunctionInfo } from './function-info';
import type { Invoker } from './invoker';
import { type HostLogger, hostLine } from './logger';
import { type QueueMessageView, queueInvocationInput } from './queue-message';

export interface QueueListenerOptions {
  /** Messages processed at once (host.json queues.batchSize). */
  batchSize: number;
  /** Fetch more when this many or fewer are still running (host.json queues.newBatchThreshold). */
  newBatchThreshold: number;
  pollIntervalMs: { min: number; max: number };
  maxDequeueCount: number;
  /** How long a failed message stays invisible before its next try (host.json queues.visibilityTimeout). */
  visibilityTimeoutSeconds: number;
  /** The lease: visibility while a message is processed, renewed at half-time. */
  leaseSeconds: number;
}

/**
 * Polls one storage queue for one queue-triggered function, like the Functions host's queue listener:
 * messages are leased while processed, deleted on success, made visible again after a failure, and
 * moved to `<queue>-poison` when a failure happens at the maximum dequeue count.
 */
export class QueueListener {
  readonly #inFlight = new Set<Promise<void>>();
  #stopped = false;
  #wake?: () => void;
  #loop?: Promise<void>;

  constructor(
    readonly info: RegisteredFunctionInfo,
    private readonly queue: () => Promise<QueueClient>,
    private readonly poisonQueue: () => Promise<QueueClient>,
    private readonly invoker: Invoker,
    private readonly logger: HostLogger,
    private readonly options: QueueListenerOptions,
  ) {}

  start(): void {
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    let delay = this.options.pollIntervalMs.min;
    let lastError = '';
    while (!this.#stopped) {
      if (this.#inFlight.size > this.options.newBatchThreshold) {
        await this.#sleep(this.options.pollIntervalMs.max);
        continue;
      }
      try {
        const client = await this.queue();
        const wanted = Math.min(32, this.options.batchSize - this.#inFlight.size);
        const received = await client.receiveMessages({
          numberOfMessages: Math.max(1, wanted),
          visibilityTimeout: this.options.leaseSeconds,
        });
        lastError = '';
        for (const message of received.receivedMessageItems) {
          this.#track(
            this.#process(client, message).catch((error: Error) =>
              hostLine(this.logger, 'error', `Queue ${this.info.queueName}: ${error.message}`),
            ),
          );
        }
        if (received.receivedMessageItems.length > 0) {
          delay = this.options.pollIntervalMs.min;
          continue;
        }
        delay = Math.min(delay * 2, this.options.pollIntervalMs.max);
      } catch (error) {
        if (this.#stopped) break;
        const message = (error as Error).message;
        // Storage unreachable: say it once, keep trying at the slowest pace.
        if (message !== lastError) {
          hostLine(
            this.logger,
            'error',
            `Queue ${this.info.queueName} (function ${this.info.name}): ${message}`,
          );
          lastError = message;
        }
        delay = this.options.pollIntervalMs.max;
      }
      await this.#sleep(delay);
    }
  }

  #track(work: Promise<void>): void {
    this.#inFlight.add(work);
    void work.finally(() => {
      this.#inFlight.delete(work);
      this.#wake?.();
    });
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }

  async #process(client: QueueClient, item: DequeuedMessageItem): Promise<void> {
    const message: QueueMessageView = { ...item };
    if (message.dequeueCount > this.options.maxDequeueCount) {
      // Dequeued too often without an outcome (e.g. a crash mid-run): straight to the poison queue.
      await this.#poison(client, message);
      return;
    }
    const lease = this.#holdLease(client, message);
    let succeeded = false;
    try {
      const run = await this.invoker.invoke(
        this.info,
        queueInvocationInput(this.info.name, this.info.triggerBinding, message),
        `New queue message detected on '${this.info.queueName}'.`,
      );
      succeeded = run.outcome.outcome === 'Succeeded';
    } finally {
      await lease.release();
    }
    try {
      if (succeeded) {
        await client.deleteMessage(message.messageId, message.popReceipt);
      } else if (message.dequeueCount >= this.options.maxDequeueCount) {
        await this.#poison(client, message);
      } else {
        await client.updateMessage(
          message.messageId,
          message.popReceipt,
          undefined,
          this.options.visibilityTimeoutSeconds,
        );
      }
    } catch (error) {
      hostLine(
        this.logger,
        'error',
        `Queue ${this.info.queueName}: could not settle message ${message.messageId}: ${(error as Error).message}`,
      );
    }
  }

  async #poison(client: QueueClient, message: QueueMessageView): Promise<void> {
    const poisonName = `${this.info.queueName}-poison`;
    hostLine(
      this.logger,
      'warning',
      `Message ${message.messageId} has reached MaxDequeueCount of ${this.options.maxDequeueCount}. Moving message to queue '${poisonName}'.`,
    );
    const poison = await this.poisonQueue();
    await poison.sendMessage(message.messageText);
    await client.deleteMessage(message.messageId, message.popReceipt);
  }

  /** Renews the message's invisibility while the function runs; the pop receipt changes each time. */
  #holdLease(client: QueueClient, message: QueueMessageView): { release(): Promise<void> } {
    const renewEvery = Math.max(1, this.options.leaseSeconds / 2) * 1000;
    // The message is settled with the newest pop receipt, so a renewal in progress is awaited first.
    let renewal: Promise<void> = Promise.resolve();
    const timer = setInterval(() => {
      renewal = client
        .updateMessage(message.messageId, message.popReceipt, undefined, this.options.leaseSeconds)
        .then((updated) => {
          if (updated.popReceipt) message.popReceipt = updated.popReceipt;
          if (updated.nextVisibleOn) message.nextVisibleOn = updated.nextVisibleOn;
        })
        .catch((error: Error) =>
          hostLine(
            this.logger,
            'warning',
            `Queue ${this.info.queueName}: lease renewal failed: ${error.message}`,
          ),
        );
    }, renewEvery);
    return {
      release: () => {
        clearInterval(timer);
        return renewal;
      },
    };
  }

  /** Stops polling and waits (at most `timeoutMs`) for messages being processed. */
  async stop(timeoutMs: number): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#loop;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.#inFlight]),
      new Promise((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }
}
