import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { createHmac } from 'node:crypto';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { adminLogin, launchBrowser, screenshot, type Server, startServer, tearDown, watchCsp } from './harness';

/** What the local receiver got. */
interface Received {
  delivery: string;
  signature: string;
  body: string;
}

let server: Server;
let browser: Browser;
let receiver: HttpServer;
const received: Received[] = [];

beforeEach(async () => {
  // The receiver is plain http on 127.0.0.1: allowed for this server only (`webhooks.allow_insecure_hosts`).
  process.env.JAMUNA_WEBHOOKS_ALLOW_INSECURE_HOSTS = '127.0.0.1';
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push({ delivery: String(req.headers['x-jamuna-delivery']), signature: String(req.headers['x-jamuna-signature']), body });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((res) => receiver.listen(0, '127.0.0.1', res));
  server = await startServer();
  browser = await launchBrowser();
});

afterEach(async (ctx) => {
  await tearDown(ctx, server, browser);
  receiver?.close();
  delete process.env.JAMUNA_WEBHOOKS_ALLOW_INSECURE_HOSTS;
});

async function customerMessage(text: string): Promise<void> {
  const call = async (path: string, token: string | null, body: unknown): Promise<Record<string, string>> => {
    const r = await fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    if (!r.ok) throw new Error(`${path} → ${r.status} ${await r.text()}`);
    return (await r.json()) as Record<string, string>;
  };
  const visitor = await call('/api/v1/auth/visitor', null, { widget_key: server.widgetKey });
  const token = visitor.access_token!;
  const conversation = await call('/api/v1/conversations', token, { channel: 'web' });
  await call(`/api/v1/conversations/${conversation.id}/messages`, token, { client_message_id: 'wh-e2e-1', text });
}

describe('webhooks in the dashboard, in a real browser', () => {
  it('an admin registers a webhook, copies its secret, and sees the signed delivery appear', async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const violations = watchCsp(context);
    const admin = await adminLogin(context, server, '#/settings');
    await admin.getByRole('link', { name: /Webhooks/ }).click();
    await admin.getByRole('heading', { name: 'Webhooks', level: 1 }).waitFor();

    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    await admin.getByLabel(/Endpoint URL/).fill(url);
    await admin.getByLabel('HandoffRequested').check();
    expect(await admin.getByLabel('MessagePosted').isChecked()).toBe(true);
    await admin.getByRole('button', { name: 'Register' }).click();
    const secret = await admin.getByTestId('webhook-secret').innerText();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    await admin.getByRole('button', { name: 'Copy' }).waitFor();
    await admin.getByRole('table', { name: 'Webhooks' }).getByText(url).waitFor();

    await customerMessage('Has my order shipped?');
    // The bot may hand the conversation off too (HandoffRequested, also subscribed): find the message's row.
    const row = admin.locator('[data-testid="deliveries"] tbody tr[data-status="delivered"]', { hasText: 'MessagePosted' });
    await row.waitFor({ timeout: 30_000 });
    await screenshot(admin, 'webhooks');

    // The receiver got it, signed with the secret the page showed once.
    const got = received.find((r) => (JSON.parse(r.body) as { type: string }).type === 'MessagePosted');
    expect(got).toBeDefined();
    const [t, v1] = got!.signature.split(',').map((p) => p.split('=')[1]);
    expect(v1).toBe(createHmac('sha256', secret).update(`${t}.${got!.body}`).digest('hex'));
    expect(await row.innerText()).toContain(got!.delivery);
    expect((JSON.parse(got!.body) as { data: { text: string } }).data.text).toBe('Has my order shipped?');

    // Reloaded, the page never shows the secret again.
    await admin.reload();
    await admin.getByRole('table', { name: 'Webhooks' }).getByText(url).waitFor();
    expect(await admin.getByTestId('webhook-secret').count()).toBe(0);
    expect(await admin.content()).not.toContain(secret);
    expect(violations).toEqual([]);
  });
});
