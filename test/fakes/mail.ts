/** Reads what the SMTP sink received: a MIME part's decoded body, for assertions on an email's content. */

export function mimePart(raw: string, contentType: 'text/plain' | 'text/html'): string | undefined {
  const [head = '', ...rest] = raw.split(/\r?\n\r?\n/);
  const headers = head.replace(/\r?\n[ \t]+/g, ' ');
  const boundary = /^content-type:\s*multipart\/[^;]+;.*boundary="?([^";\r\n]+)"?/im.exec(headers)?.[1];
  const body = rest.join('\r\n\r\n');
  if (!boundary) {
    return new RegExp(`^content-type:\\s*${contentType}`, 'im').test(headers)
      ? decode(headers, body)
      : undefined;
  }
  for (const part of body.split(`--${boundary}`).slice(1)) {
    if (part.startsWith('--')) break;
    const found = mimePart(part.replace(/^\r?\n/, ''), contentType);
    if (found !== undefined) return found;
  }
  return undefined;
}

function decode(headers: string, body: string): string {
  const encoding = /^content-transfer-encoding:\s*(\S+)/im.exec(headers)?.[1]?.toLowerCase();
  const text = body.replace(/\r?\n$/, '');
  if (encoding === 'base64') return Buffer.from(text.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (encoding === 'quoted-printable') {
    const bytes = text
      .replace(/=\r?\n/g, '')
      .replace(/=([0-9A-F]{2})/gi, (_m, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
    return Buffer.from(bytes, 'latin1').toString('utf8');
  }
  return text;
}
