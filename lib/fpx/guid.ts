const GUID = /^\{?([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})\}?$/i;

/** `C4B8D7A6F9E64F6D8C8E1A1F4E6B9E3F` → `c4b8d7a6-f9e6-4f6d-8c8e-1a1f4e6b9e3f`; undefined when not a GUID. */
export function normalizeGuid(value: string): string | undefined {
  const m = GUID.exec(value.trim());
  return m ? m.slice(1, 6).join('-').toLowerCase() : undefined;
}

export const EMPTY_GUID = '00000000-0000-0000-0000-000000000000';
