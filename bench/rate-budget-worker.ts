/**
 * One "instance" of bench/rate-budget: the app's own composition root (so its own FPX client and its share
 * of the deployment's budget) in a process of its own. The parent tells it what to do over IPC:
 *   {do: 'busy', workers}   that many bulk loops of GET /timezones, as fast as the budget lets them
 *   {do: 'idle'}            stop the loops
 *   {do: 'interactive', everyMs}  also one interactive call every so often, timing its wait for a slot
 *   {do: 'report'}          answers {calls, throttled, storeRequests, slotsClaimed, waits}
 */
import { buildServices } from '../functions/services';
import { loadConfig } from '../lib/config';
import type { SharedRateBudget } from '../lib/rate-budget';

const services = buildServices(loadConfig());
const fpx = services.fpx;
const budget = fpx.transport.limiter as SharedRateBudget;
const waits: number[] = [];
const innerAcquire = budget.acquire.bind(budget);
// Time each interactive caller's wait for its slot (the bench's webhook figure).
budget.acquire = async (signal, priority) => {
  const started = performance.now();
  await innerAcquire(signal, priority);
  if (priority === 'interactive') waits.push(performance.now() - started);
};

let generation = 0;
let interactiveTimer: NodeJS.Timeout | undefined;

async function loop(mine: number): Promise<void> {
  while (generation === mine) {
    await fpx.referenceList('timezones').catch(() => undefined);
  }
}

process.on('message', (message: { do: string; workers?: number; everyMs?: number }) => {
  switch (message.do) {
    case 'busy': {
      generation++;
      for (let i = 0; i < (message.workers ?? 16); i++) void loop(generation);
      break;
    }
    case 'idle':
      generation++;
      clearInterval(interactiveTimer);
      break;
    case 'interactive':
      clearInterval(interactiveTimer);
      interactiveTimer = setInterval(() => {
        void fpx.referenceList('services', { priority: 'interactive' }).catch(() => undefined);
      }, message.everyMs ?? 500);
      break;
    case 'report':
      process.send?.({
        calls: fpx.transport.stats.calls,
        throttled: fpx.transport.stats.throttled,
        ...budget.stats,
        waits: waits.splice(0),
      });
      break;
  }
});
process.send?.({ ready: true });
