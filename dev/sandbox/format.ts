/** Generated dates start here. */
export const BASE_TIME = Date.UTC(2024, 0, 1);
export const DAY_MS = 24 * 60 * 60 * 1000;
export const HOUR_MS = 60 * 60 * 1000;

export function asStringId(entry: { id: number | string; name: string }): { id: string; name: string } {
  return { id: String(entry.id), name: entry.name };
}

export function spell(canonical: string, form: 'plain' | 'upper' | 'noDashes'): string {
  if (form === 'upper') return canonical.toUpperCase();
  if (form === 'noDashes') return canonical.replaceAll('-', '');
  return canonical;
}

/** ISO 8601 without milliseconds, as in the guide's samples. */
export function isoSeconds(ms: number): string {
  // Formatted by hand with a cached date part: toISOString was a tenth of generating 100,000 referrals.
  const day = Math.floor(ms / DAY_MS);
  let date = DATE_PARTS.get(day);
  if (date === undefined) {
    date = new Date(day * DAY_MS).toISOString().slice(0, 11);
    DATE_PARTS.set(day, date);
  }
  const seconds = Math.floor((ms - day * DAY_MS) / 1000);
  const hh = TWO_DIGITS[Math.floor(seconds / 3600)];
  const mm = TWO_DIGITS[Math.floor(seconds / 60) % 60];
  return `${date}${hh}:${mm}:${TWO_DIGITS[seconds % 60]}Z`;
}

const DATE_PARTS = new Map<number, string>();
const TWO_DIGITS = Array.from({ length: 60 }, (_, n) => String(n).padStart(2, '0'));

export function slug(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '');
}
