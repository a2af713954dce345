import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { adminLogin, screenshot, type Server, setUp, tearDown } from './harness';

let server: Server;
let browser: Browser;

beforeEach(async () => {
  ({ server, browser } = await setUp());
});
afterEach((ctx) => tearDown(ctx, server, browser));

async function call<T>(method: string, path: string, token: string | null, body?: unknown): Promise<T> {
  const r = await fetch(`${server.url}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`${method} ${path} → ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

describe('desktop notifications in the dashboard, in a real browser', () => {
  it('with the permission granted, a handoff raises one notification (and the setting turns them off)', async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    await context.grantPermissions(['notifications'], { origin: server.url });
    // Observe the page's Notification constructor: every notification it makes is recorded.
    await context.addInitScript(() => {
      const Real = window.Notification;
      const seen: { title: string; body: string }[] = [];
      (window as unknown as { __notifications: typeof seen }).__notifications = seen;
      class Observed extends Real {
        constructor(title: string, options?: NotificationOptions) {
          super(title, options);
          seen.push({ title, body: options?.body ?? '' });
        }
      }
      Object.defineProperty(window, 'Notification', { value: Observed, configurable: true, writable: true });
    });
    const admin = await adminLogin(context, server, '#/inbox/pending');
    const notifications = () => admin.evaluate(() => (window as unknown as { __notifications: { title: string; body: string }[] }).__notifications);

    await admin.getByRole('button', { name: 'Notifications' }).click();
    const panel = admin.getByRole('region', { name: 'Notification settings' });
    await panel.getByText('Desktop notifications are allowed.').waitFor();
    await expect.poll(() => panel.getByLabel('Desktop notifications').isChecked()).toBe(true);
    await screenshot(admin, 'notifications-setting');

    // A visitor asks for a human.
    const visitor = await call<{ access_token: string }>('POST', '/api/v1/auth/visitor', null, { widget_key: server.widgetKey });
    const { id } = await call<{ id: string }>('POST', '/api/v1/conversations', visitor.access_token, { channel: 'web' });
    await call('POST', `/api/v1/conversations/${id}/handoff`, visitor.access_token, {});
    await expect.poll(notifications, { timeout: 30_000 }).toEqual([{ title: 'Waiting for a human', body: 'A conversation was handed over to the team.' }]);

    // Turned off: a second handoff raises none (a later event shows the socket delivered it).
    await panel.getByLabel('Desktop notifications').uncheck();
    await panel.getByLabel('Play a sound').uncheck();
    await admin.getByRole('button', { name: 'Notifications' }).click();
    await expect.poll(() => admin.getByRole('button', { name: 'Notifications' }).getAttribute('data-state')).toBe('off');
    const second = await call<{ id: string }>('POST', '/api/v1/conversations', visitor.access_token, { channel: 'web' });
    await call('POST', `/api/v1/conversations/${second.id}/handoff`, visitor.access_token, {});
    await admin.locator(`[data-conversation="${second.id}"]`).waitFor({ timeout: 30_000 });
    expect(await notifications()).toHaveLength(1);
    // The choice is kept for this user in this browser.
    await admin.reload();
    await admin.getByRole('button', { name: 'Notifications' }).click();
    expect(await admin.getByRole('region', { name: 'Notification settings' }).getByLabel('Desktop notifications').isChecked()).toBe(false);
  });
});
