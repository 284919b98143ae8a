import type { AlertMessage } from '../alerts/alert-sender';
import type { CertificateLocation, ClientCertificate } from './certificate';
import type { ExpiryAlert } from './expiry';

const FASTTRACK_SITE = "FastTrack's partner management site (FPX)";

/** The expiry email: which certificate, when it expires, how many days are left, and what to do. */
export function expiryEmail(
  certificate: ClientCertificate,
  where: { description: string; location?: CertificateLocation },
  alert: ExpiryAlert,
): AlertMessage {
  const expires = certificate.notAfter.toISOString();
  const when =
    alert.kind === 'expired'
      ? `EXPIRED on ${expires}`
      : alert.daysLeft < 1
        ? `expires in less than a day (${expires})`
        : `expires in ${alert.daysLeft} day${alert.daysLeft === 1 ? '' : 's'} (${expires})`;
  const subject = `FPX client certificate ${when.replace(/ \(.*\)$/, '')}: ${commonName(certificate.subject)}`;
  const facts: Array<[string, string]> = [
    ['Subject', certificate.subject],
    ['Thumbprint (SHA-256)', certificate.thumbprint],
    ...locationFacts(where),
    ['Valid from', certificate.notBefore.toISOString()],
    ['Expires', expires],
    [
      'Days left',
      alert.kind === 'expired' ? `none (expired ${-alert.daysLeft} day(s) ago)` : String(alert.daysLeft),
    ],
  ];
  const consequence =
    alert.kind === 'expired'
      ? 'FPX refuses every call made with this certificate: the CRM sync and webhooks are stopped until it is replaced.'
      : 'When it expires, FPX refuses every call: the CRM sync and webhooks stop until it is replaced.';
  const steps = instructions(where.location);
  const intro = `The client certificate this app uses for the FastTrack Partner Experience (FPX) API ${when}.`;
  const text = [
    intro,
    consequence,
    '',
    ...facts.map(([k, v]) => `${k}: ${v}`),
    '',
    'What to do:',
    ...steps.map((s, i) => `${i + 1}. ${s}`),
    '',
    `This alert is sent once per threshold per certificate${alert.kind === 'expired' ? ', and daily while expired' : ''}.`,
  ].join('\n');
  const html = [
    `<p>${escapeHtml(intro)}</p>`,
    `<p><strong>${escapeHtml(consequence)}</strong></p>`,
    '<table>',
    ...facts.map(
      ([k, v]) => `<tr><th align="left">${escapeHtml(k)}</th><td><code>${escapeHtml(v)}</code></td></tr>`,
    ),
    '</table>',
    '<p>What to do:</p>',
    `<ol>${steps.map((s) => `<li>${escapeHtml(s)}</li>`).join('')}</ol>`,
  ].join('\n');
  return { subject, text, html, id: `${certificate.thumbprint}/${alert.key}` };
}

function locationFacts(where: {
  description: string;
  location?: CertificateLocation;
}): Array<[string, string]> {
  const location = where.location;
  if (location?.kind === 'keyVault') {
    return [
      ['Key Vault', location.vaultUrl],
      ['Certificate name', location.name],
    ];
  }
  if (location?.kind === 'file') return [['File', location.path]];
  return [['Source', where.description]];
}

function instructions(location: CertificateLocation | undefined): string[] {
  const download = `Sign in to ${FASTTRACK_SITE} and download the new client certificate (PFX, with its private key).`;
  if (location?.kind === 'keyVault') {
    const vault = new URL(location.vaultUrl).hostname.split('.')[0];
    return [
      download,
      `Import it as a new version of the Key Vault certificate "${location.name}" in ${location.vaultUrl} (Azure portal: Key Vault > Certificates > ${location.name} > New Version > Import; or: az keyvault certificate import --vault-name ${vault} --name ${location.name} --file <new.pfx>).`,
      'Nothing else: the app picks up the new version by itself, without a restart (within CERT_REFRESH_MINUTES, or at once when FPX refuses the old certificate). GET /api/health/details (with the function key) then shows the new thumbprint and expiry.',
    ];
  }
  return [
    download,
    `Replace the file ${location?.kind === 'file' ? location.path : '(FPX_CERT_PATH)'} with it (PEM with certificate and key, or PFX with FPX_CERT_PASSWORD).`,
    'The app re-reads the file when FPX refuses the old certificate; a restart picks it up at once. Better: keep the certificate in Key Vault (FPX_CERT_KEYVAULT_URL, FPX_CERT_NAME), which the app watches for new versions.',
  ];
}

function commonName(subject: string): string {
  return /(?:^|, )CN=([^,]+)/.exec(subject)?.[1] ?? subject;
}

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"]/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string,
  );
}
