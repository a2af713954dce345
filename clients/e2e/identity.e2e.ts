import { createHmac } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { adminApi, adminLogin, openWidget, screenshot, type Server, setUp, tearDown, watchCsp, widgetSend } from './harness';

let server: Server;
let browser: Browser;

beforeEach(async () => {
  ({ server, browser } = await setUp());
});
afterEach((ctx) => tearDown(ctx, server, browser));

/** What the host site's server does: hex(HMAC-SHA256(secret, id)). */
const sign = (secret: string, id: string): string => createHmac('sha256', secret).update(id).digest('hex');

interface Contact {
  id: string;
  conversations: { id: string }[];
}

describe('who the customer is, in a real browser', () => {
  it('the host page identifies its customer; the agent sees name, e-mail, attributes and past conversations in the contact panel', async () => {
    const call = await adminApi(server);
    const { secret } = await call<{ secret: string }>('POST', '/api/v1/tenant/identity-secret', { grace_secs: 0 });
    const customer = { id: 'shop-4711', name: 'Grace Hopper', email: 'grace@shop.example', attributes: { plan: 'Enterprise', seats: '12' } };

    // An earlier conversation, from another device of the same customer.
    const identified = await fetch(`${server.url}/api/v1/auth/identify`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ widget_key: server.widgetKey, id: customer.id, signature: sign(secret, customer.id), name: customer.name }),
    });
    expect(identified.status).toBe(200);
    const phone = (await identified.json()) as { access_token: string; user_id: string };
    const bearer = { Authorization: `Bearer ${phone.access_token}`, 'Content-Type': 'application/json' };
    const past = (await (await fetch(`${server.url}/api/v1/conversations`, { method: 'POST', headers: bearer, body: JSON.stringify({ channel: 'mobile' }) })).json()) as { id: string };
    const posted = await fetch(`${server.url}/api/v1/conversations/${past.id}/messages`, {
      method: 'POST',
      headers: bearer,
      body: JSON.stringify({ client_message_id: 'past-1', text: 'My card was declined yesterday' }),
    });
    expect(posted.ok).toBe(true);
    // Resolved, so the widget starts a new conversation (an open one would be continued).
    await call('POST', `/api/v1/conversations/${past.id}/resolve`, {});

    // The host page, with the widget: its server signed the id; the page passes it to the widget.
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const violations = watchCsp(context);
    const site = await openWidget(context, server);
    const ok = await site.evaluate(
      (identity) => (window as unknown as { Jamuna: { identify(i: unknown): Promise<boolean> } }).Jamuna.identify(identity),
      { ...customer, signature: sign(secret, customer.id) },
    );
    expect(ok).toBe(true);
    // A forged signature is refused and changes nothing.
    const forged = await site.evaluate(
      (identity) => (window as unknown as { Jamuna: { identify(i: unknown): Promise<boolean> } }).Jamuna.identify(identity),
      { ...customer, id: 'shop-0001', signature: sign('not-the-secret', 'shop-0001') },
    );
    expect(forged).toBe(false);
    await site.getByPlaceholder('Write a message…').waitFor();
    await widgetSend(site, 'Where is my new card?');
    await expect.poll(() => site.locator('.jw-msg[data-role="customer"]').getAttribute('data-state'), { timeout: 30_000 }).toBe('sent');

    // The widget's conversation belongs to the same customer as the phone's.
    let current = '';
    await expect
      .poll(
        async () => {
          const c = await call<Contact>('GET', `/api/v1/customers/${phone.user_id}`);
          current = c.conversations.map((x) => x.id).find((x) => x !== past.id) ?? '';
          return c.conversations.length;
        },
        { timeout: 30_000 },
      )
      .toBe(2);

    const admin = await adminLogin(context, server, `#/inbox/all/${encodeURIComponent(current)}`);
    const panel = admin.getByTestId('contact-panel');
    await panel.waitFor();
    await expect.poll(() => panel.getByTestId('contact-name').innerText()).toBe('Grace Hopper');
    expect(await panel.getByTestId('contact-email').innerText()).toBe('grace@shop.example');
    expect(await panel.getByTestId('contact-verified').innerText()).toBe('verified');
    const attributes = await panel.getByTestId('contact-attribute').allInnerTexts();
    expect(attributes.map((a) => a.replace(/\s+/g, ' ').trim())).toEqual(['plan Enterprise', 'seats 12']);
    await expect.poll(() => panel.getByTestId('contact-past').innerText()).toContain('My card was declined yesterday');
    await screenshot(admin, 'contact-panel');
    expect(violations).toEqual([]);
  });

  it('a required pre-chat form comes before the first message, and the agent sees its details as unverified', async () => {
    const call = await adminApi(server);
    const tenant = await call<{ settings: Record<string, unknown> }>('GET', '/api/v1/tenant');
    await call('PUT', '/api/v1/tenant/settings', { ...tenant.settings, prechat: 'required' });
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${server.url}/?key=${encodeURIComponent(server.widgetKey)}`);
    await page.getByRole('button', { name: /open chat/i }).click();
    const form = page.getByRole('form', { name: 'Before we start' });
    await form.waitFor();
    expect(await page.getByLabel('Your message').isVisible()).toBe(false);
    expect(await form.getByRole('button', { name: 'Skip' }).count()).toBe(0);
    await form.getByLabel('Your name').fill('Ada Byron');
    await form.getByLabel('Your e-mail address').fill('ada@example.com');
    await form.getByRole('button', { name: 'Start chatting' }).click();
    await page.getByLabel('Your message').waitFor();
    await screenshot(page, 'prechat-form-done');
    await widgetSend(page, 'Hello, I need help with my account');
    await expect.poll(() => page.locator('.jw-msg[data-role="customer"]').getAttribute('data-state'), { timeout: 30_000 }).toBe('sent');
    let customerId = '';
    await expect
      .poll(async () => {
        const list = await call<{ items: { customer: string }[] }>('GET', '/api/v1/conversations?view=all');
        customerId = list.items[0]?.customer ?? '';
        return customerId;
      })
      .not.toBe('');
    const contact = await call<{ name: string; email: string; verified: boolean; identified: boolean }>('GET', `/api/v1/customers/${customerId}`);
    expect([contact.name, contact.email, contact.verified, contact.identified]).toEqual(['Ada Byron', 'ada@example.com', false, true]);
  });
});
