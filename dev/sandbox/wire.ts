import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Reply } from './http';

/** FPX bodies are small; a note's text is at most 1,048,576 characters (4 MiB in UTF-8 at worst). */
const MAX_BODY_BYTES = 8 * 1024 * 1024;

export function write(res: ServerResponse, reply: Reply): void {
  const text = reply.body === undefined ? '' : JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    ...reply.headers,
  });
  res.end(text);
}

export type ReadBody = { text?: string; json?: unknown; error?: string } | 'tooLarge';

export async function readBody(req: IncomingMessage): Promise<ReadBody> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return 'tooLarge';
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  try {
    return { text, json: JSON.parse(text) };
  } catch (error) {
    return { text, error: `The request body is not valid JSON: ${(error as Error).message}` };
  }
}

export function queryRecord(params: URLSearchParams): Record<string, string[]> {
  const record: Record<string, string[]> = {};
  for (const [name, value] of params) record[name] = [...(record[name] ?? []), value];
  return record;
}

export function headerOf(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}
