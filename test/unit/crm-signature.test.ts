/** Standard Webhooks verification: interoperable with the `standardwebhooks` package both ways, rotation, tolerance. */
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, test } from 'vitest';
import { signWebhook, verifyWebhookSignature, webhookKeys } from '../../lib/crm';

const secret = () => `whsec_${randomBytes(32).toString('base64')}`;
const body = Buffer.from(
  '{"tenantId":"9d4c6f56-7db9-4236-9957-ce225e3583be","text":"héllo","noteCategoryId":1}',
);
const now = Date.now();
const seconds = Math.floor(now / 1000);

function headers(signature: string, timestamp = seconds, id = 'msg_1') {
  return { id, timestamp: String(timestamp), signature };
}

describe('verifyWebhookSignature', () => {
  test('accepts what the standardwebhooks package signs, and the package accepts what we sign', () => {
    const s = secret();
    const theirs = new Webhook(s).sign('msg_1', new Date(now), body.toString());
    expect(verifyWebhookSignature(webhookKeys([s]), headers(theirs), body, now)).toEqual({
      ok: true,
      webhookId: 'msg_1',
      timestamp: seconds,
    });
    const ours = signWebhook(webhookKeys([s])[0] as Buffer, 'msg_1', seconds, body);
    expect(ours).toBe(theirs);
    expect(() =>
      new Webhook(s).verify(body.toString(), {
        'webhook-id': 'msg_1',
        'webhook-timestamp': String(seconds),
        'webhook-signature': ours,
      }),
    ).not.toThrow();
  });

  test('any of several space-separated signatures may match; other versions are ignored', () => {
    const s = secret();
    const good = signWebhook(webhookKeys([s])[0] as Buffer, 'msg_1', seconds, body);
    const wrong = signWebhook(webhookKeys([secret()])[0] as Buffer, 'msg_1', seconds, body);
    const keys = webhookKeys([s]);
    expect(verifyWebhookSignature(keys, headers(`${wrong} v1a,abc ${good}`), body, now).ok).toBe(true);
    expect(verifyWebhookSignature(keys, headers(`v2,${good.slice(3)}`), body, now).ok).toBe(false);
    expect(verifyWebhookSignature(keys, headers(wrong), body, now).ok).toBe(false);
  });

  test('rotation: each configured secret is accepted, no other', () => {
    const [oldSecret, newSecret] = [secret(), secret()];
    const keys = webhookKeys([oldSecret, newSecret]);
    for (const s of [oldSecret, newSecret]) {
      const signature = signWebhook(webhookKeys([s])[0] as Buffer, 'msg_1', seconds, body);
      expect(verifyWebhookSignature(keys, headers(signature), body, now).ok).toBe(true);
    }
    const other = signWebhook(webhookKeys([secret()])[0] as Buffer, 'msg_1', seconds, body);
    expect(verifyWebhookSignature(keys, headers(other), body, now)).toEqual({
      ok: false,
      message: 'No matching webhook signature',
    });
  });

  test('five minutes of tolerance either way; timestamps must be plain seconds', () => {
    const s = secret();
    const keys = webhookKeys([s]);
    const at = (t: number) => headers(signWebhook(keys[0] as Buffer, 'msg_1', t, body), t);
    expect(verifyWebhookSignature(keys, at(seconds - 299), body, now).ok).toBe(true);
    expect(verifyWebhookSignature(keys, at(seconds - 301), body, now)).toMatchObject({ message: /too old/ });
    expect(verifyWebhookSignature(keys, at(seconds + 301), body, now)).toMatchObject({ message: /future/ });
    const signature = signWebhook(keys[0] as Buffer, 'msg_1', seconds, body);
    expect(verifyWebhookSignature(keys, headers(signature, `${seconds}abc` as never), body, now).ok).toBe(
      false,
    );
  });

  test('the signature covers the exact bytes and the id', () => {
    const s = secret();
    const keys = webhookKeys([s]);
    const signature = signWebhook(keys[0] as Buffer, 'msg_1', seconds, body);
    expect(
      verifyWebhookSignature(keys, headers(signature), Buffer.concat([body, Buffer.from(' ')]), now).ok,
    ).toBe(false);
    expect(verifyWebhookSignature(keys, headers(signature, seconds, 'msg_2'), body, now).ok).toBe(false);
    expect(
      verifyWebhookSignature(keys, { id: 'msg_1', timestamp: String(seconds) }, body, now),
    ).toMatchObject({
      message: /Missing/,
    });
  });
});
