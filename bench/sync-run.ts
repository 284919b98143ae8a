/**
 * One sync run in a process of its own, so its peak RSS is the sync's alone (bench/sync starts it).
 * Settings come from the environment, as in the app; prints the SyncResult and peak RSS as JSON.
 */
import { parseArgs } from 'node:util';
import { createCertificateSource } from '../lib/cert';
import { loadConfig } from '../lib/config';
import { createFpxClient } from '../lib/fpx';
import { createStorage } from '../lib/storage';
import { syncReferrals } from '../lib/sync';

const { values } = parseArgs({ options: { suffix: { type: 'string', default: '' } } });

async function main() {
  const config = loadConfig();
  const fpx = createFpxClient(config.fpx, createCertificateSource(config.fpx.certificate));
  const storage = createStorage(config.storage);
  const started = performance.now();
  // Progress on stderr (the sync's own progress lines, with the RSS so far), so a long run shows its memory.
  const result = await syncReferrals({
    fpx,
    table: (name) => storage.table(`${name}${values.suffix}`),
    log: (line) =>
      console.error(
        `${line} | rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB, peak ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`,
      ),
  });
  const wallMs = performance.now() - started;
  await fpx.transport.close();
  // maxRSS is in kilobytes.
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  console.log(JSON.stringify({ result, wallMs, peakRssMb }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
