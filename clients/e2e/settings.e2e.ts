import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { adminLogin, openWidget, screenshot, type Server, setUp, tearDown, watchCsp, widgetSend } from './harness';

let server: Server;
let browser: Browser;

beforeEach(async () => {
  ({ server, browser } = await setUp());
});
afterEach((ctx) => tearDown(ctx, server, browser));

async function visitorStatus(key: string): Promise<number> {
  const r = await fetch(`${server.url}/api/v1/auth/visitor`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ widget_key: key }),
  });
  return r.status;
}

describe('the settings page and the security headers, in a real browser', () => {
  it('an admin rotates the widget key: the old key is refused at once, the widget works with the new one, and no page breaks its CSP', async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const violations = watchCsp(context);
    const admin = await adminLogin(context, server, '#/settings');
    const shown = admin.getByTestId('widget-key');
    await expect.poll(() => shown.innerText()).toBe(server.widgetKey);

    let question = '';
    admin.once('dialog', (d) => {
      question = d.message();
      void d.accept();
    });
    await admin.getByRole('button', { name: 'Rotate key' }).click();
    await expect.poll(() => shown.innerText()).not.toBe(server.widgetKey);
    const newKey = await shown.innerText();
    expect(question).toMatch(/stops working at once/);
    expect(await admin.locator('pre.code').innerText()).toContain(`data-tenant-key="${newKey}"`);
    await admin.getByText(/old key no longer works/).waitFor();
    await screenshot(admin, 'settings-rotated-key');

    expect(await visitorStatus(server.widgetKey)).toBe(401);
    expect(await visitorStatus(newKey)).toBe(201);

    // The widget, on the demo page, with the new key: it signs in, opens its socket and sends.
    const widget = await openWidget(context, { ...server, widgetKey: newKey });
    await widgetSend(widget, 'When will my new card arrive?');
    await expect.poll(() => widget.locator('.jw-msg[data-role="customer"]').getAttribute('data-state'), { timeout: 30_000 }).toBe('sent');
    await widget.locator('.jw-msg[data-role="bot"]').first().waitFor({ timeout: 60_000 });

    // The API docs page renders with its inline script (allowed by hash).
    const docs = await context.newPage();
    await docs.goto(`${server.url}/docs`);
    await docs.getByText('/api/v1/tenant/widget-key').first().waitFor();

    // The mobile web app starts.
    const mobile = await context.newPage();
    await mobile.goto(`${server.url}/mobile/?key=${encodeURIComponent(newKey)}`);
    await mobile.getByRole('button', { name: 'Continue as a visitor' }).waitFor();

    expect(violations).toEqual([]);
  });
});
