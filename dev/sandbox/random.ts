import { createHash } from 'node:crypto';

/** A small seeded generator (mulberry32): the same seed gives the same data and the same faults. */
export class Random {
  private state: number;

  constructor(...seedParts: Array<number | string>) {
    this.state = hashToUint32(seedParts.join(':'));
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)];
    if (item === undefined) throw new Error('pick() from an empty list');
    return item;
  }

  /** `count` distinct items, in the list's order. */
  sample<T>(items: readonly T[], count: number): T[] {
    const chosen = new Set<number>();
    const wanted = Math.min(count, items.length);
    while (chosen.size < wanted) chosen.add(Math.floor(this.next() * items.length));
    return [...chosen].sort((a, b) => a - b).map((index) => items[index] as T);
  }

  /** A version-4-shaped GUID, lowercase with dashes. */
  guid(): string {
    // Written as ASCII into one buffer: string concatenation made the garbage collector the
    // biggest cost of generating 100,000 referrals.
    let at = 0;
    for (let i = 0; i < 16; i += 4) {
      const word = Math.floor(this.next() * 4294967296);
      for (let shift = 24; shift >= 0; shift -= 8) {
        const byteIndex = i + (24 - shift) / 8;
        let byte = (word >>> shift) & 0xff;
        if (byteIndex === 6) byte = (byte & 0x0f) | 0x40; // version 4
        if (byteIndex === 8) byte = (byte & 0x3f) | 0x80; // RFC 4122 variant
        if (byteIndex === 4 || byteIndex === 6 || byteIndex === 8 || byteIndex === 10)
          GUID_CHARS[at++] = DASH;
        GUID_CHARS[at++] = HEX_DIGITS[byte >>> 4] as number;
        GUID_CHARS[at++] = HEX_DIGITS[byte & 0x0f] as number;
      }
    }
    return GUID_CHARS.toString('latin1');
  }
}

const HEX_DIGITS = Array.from('0123456789abcdef', (digit) => digit.charCodeAt(0));
const DASH = '-'.charCodeAt(0);
const GUID_CHARS = Buffer.alloc(36);

/** A stable GUID for a name (reference data keeps the same ids whatever the seed). */
export function guidFor(name: string): string {
  return formatGuid(createHash('sha1').update(name).digest('hex').slice(0, 32));
}

const GUID_DIGITS = /^[0-9a-f]{32}$/;

/** Lowercase with dashes, from any form FPX or a client uses (any case, with or without dashes or braces). */
export function canonicalGuid(value: string): string | undefined {
  const digits = value
    .trim()
    .replace(/^\{|\}$/g, '')
    .replaceAll('-', '')
    .toLowerCase();
  return GUID_DIGITS.test(digits) ? formatGuid(digits) : undefined;
}

function formatGuid(hex32: string): string {
  return `${hex32.slice(0, 8)}-${hex32.slice(8, 12)}-${hex32.slice(12, 16)}-${hex32.slice(16, 20)}-${hex32.slice(20, 32)}`;
}

function hashToUint32(text: string): number {
  // FNV-1a: enough to spread seeds; no need for a cryptographic hash per record.
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
