import { promisify } from 'node:util';
import { deflateRaw, deflateRawSync, inflateRaw, inflateRawSync } from 'node:zlib';

/**
 * Large JSON values (a request payload, FPX's answer) stored in Table Storage: UTF-8 JSON, deflated, cut
 * into Binary properties of at most 64 KiB. Deflate keeps the common case in one entity and the worst case
 * (a 1,048,576-character note, 2 MiB in UTF-16 and up to 3 MiB of UTF-8) within one 4 MiB transaction.
 */

/** A Binary property holds at most 64 KiB. */
export const CHUNK_BYTES = 64_000;
/**
 * The most a blob may take once deflated: its chunks travel base64-encoded (4/3) in one batch transaction
 * of at most 4 MiB, next to the delivery row. 2.7 MB deflated is more than 5 MiB of ordinary JSON.
 */
export const MAX_PACKED_BYTES = 2_700_000;
const SYNC_BELOW_BYTES = 64 * 1024;

const deflateAsync = promisify(deflateRaw);
const inflateAsync = promisify(inflateRaw);

/** JSON → deflated bytes; small values synchronously (no thread-pool hop), large ones off the event loop. */
export async function packJson(value: unknown): Promise<Buffer> {
  const text = Buffer.from(JSON.stringify(value ?? null), 'utf8');
  return text.length < SYNC_BELOW_BYTES ? deflateRawSync(text) : deflateAsync(text);
}

export async function unpackJson(bytes: Buffer): Promise<unknown> {
  const text = bytes.length < SYNC_BELOW_BYTES / 4 ? inflateRawSync(bytes) : await inflateAsync(bytes);
  return JSON.parse(text.toString('utf8'));
}

export function toChunks(bytes: Buffer): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let start = 0; start < bytes.length; start += CHUNK_BYTES) {
    chunks.push(new Uint8Array(bytes.subarray(start, start + CHUNK_BYTES)));
  }
  return chunks;
}

export function fromChunks(chunks: readonly Uint8Array[]): Buffer {
  return Buffer.concat(chunks.map((chunk) => Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
}
