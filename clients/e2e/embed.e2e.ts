import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { adminApi, launchBrowser, screenshot, startServer, type Server, tearDown, widgetSend } from './harness';

// The widget as customers embed it: on the tenant's own site, another origin
// than Jamuna's, with one script tag. The browser then calls the API across
// origins (CORS) and opens the socket with that site's Origin.

let server: Server;
let browser: Browser;
let site: HttpServer;
let siteOrigin: string;

/** A tenant's website: one page that embeds the widget from `server`. */
async function startSite(jamuna: Server): Promise<void> {
  site = createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html><head><title>Shop</title></head><body>
<h1>The shop</h1>
<script src="${jamuna.url}/widget.js" data-tenant-key="${jamuna.widgetKey}" data-title="Shop support"></script>
</body></html>`);
  });
  await new Promise<void>((res) => site.listen(0, '127.0.0.1', res));
  siteOrigin = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
}

beforeEach(async () => {
  server = await startServer();
  browser = await launchBrowser();
  await startSite(server);
});

afterEach(async (ctx) => {
  await new Promise((res) => site?.close(res));
  await tearDown(ctx, server, browser);
});

describe('the widget embedded on a tenant site (another origin), in a real browser', () => {
  it('works once the site is one of the tenant allowed origins, and not before', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await page.goto(siteOrigin);

    // Not allowed yet: the page cannot mint a visitor with the tenant's key
    // (a readable 403, so the widget can say why).
    const before = await page.evaluate(
      async ([url, key]) => {
        try {
          const r = await fetch(`${url}/api/v1/auth/visitor`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ widget_key: key }),
          });
          return `status ${r.status}`;
        } catch {
          return 'blocked';
        }
      },
      [server.url, server.widgetKey],
    );
    expect(before).toBe('status 403');

    // The admin adds the site to the allowed origins; the widget then chats.
    const call = await adminApi(server);
    await call('PUT', '/api/v1/tenant/settings', { allowed_origins: [siteOrigin], self_signup: true });
    await page.reload();
    await page.getByRole('button', { name: /open chat/i }).click();
    await page.getByLabel('Your message').waitFor();
    await widgetSend(page, 'When will my new card arrive?');
    await expect.poll(() => page.locator('.jw-msg[data-role="customer"]').getAttribute('data-state')).toBe('sent');
    const answer = page.locator('.jw-msg[data-role="bot"]').first();
    await answer.waitFor({ timeout: 60_000 });
    expect(await answer.locator('.jw-bubble').innerText()).toMatch(/5 working days/);
    await screenshot(page, 'embed-other-origin');
  });
});
