/**
 * Checks a PartitionKey or RowKey against Table Storage's rules: a non-empty string without
 * `/ \ # ?` or control characters, at most 1 KiB. We count the 1 KiB as UTF-16 bytes (512 chars),
 * the conservative reading of the service's limit. Returns what is wrong, or undefined.
 */
export function tableKeyProblem(key: unknown): string | undefined {
  if (typeof key !== 'string') return `is ${key === null ? 'null' : typeof key}, not a string`;
  if (key.length === 0) return 'is empty';
  if (key.length * 2 > 1024) return `is ${key.length} characters long (at most 512)`;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we reject
  const forbidden = /[/\\#?\u0000-\u001f\u007f-\u009f]/.exec(key);
  if (forbidden) return `contains the forbidden character ${JSON.stringify(forbidden[0])}`;
  return undefined;
}
