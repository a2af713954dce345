/**
 * The mobile app's web build (Expo's export with react-native-web, served by
 * `jamuna serve` at /mobile/) in Chromium at a phone's size: a visitor chats
 * with the bot through the real server. Saves docs/mobile.png for the README.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { launchBrowser, repoRoot, screenshot, startServer, type Server } from './harness';

const exported = join(repoRoot, 'clients/dist/mobile/index.html');

describe('the mobile app (web build) in a phone-sized Chromium', () => {
  let server: Server;
  let browser: Browser;

  beforeAll(async () => {
    if (!existsSync(exported)) throw new Error(`${exported} is missing: build it with \`npm run export:web\` in clients/mobile (\`make clients\` does)`);
    server = await startServer();
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('a visitor starts a conversation, asks, and sees the bot answer with its source; the message shows as sent', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${server.url}/mobile/?key=${encodeURIComponent(server.widgetKey)}`);

    await page.getByRole('button', { name: 'Continue as a visitor' }).click();
    await page.getByText('Your conversations').waitFor();
    await page.getByRole('button', { name: 'New conversation' }).click();

    const box = page.getByLabel('Your message');
    await box.waitFor();
    await box.fill('When will my new card arrive?');
    await page.getByRole('button', { name: 'send' }).click();

    await page.getByText('When will my new card arrive?').first().waitFor();
    await expect.poll(() => page.getByLabel('Sent').count(), { timeout: 30_000 }).toBeGreaterThan(0);
    const sources = page.getByLabel('Sources');
    await sources.waitFor({ timeout: 60_000 });
    expect(await sources.innerText()).toContain('When will my new card arrive?');
    await page.getByText(/5 working days/).waitFor();
    await page.getByRole('button', { name: 'This helped' }).waitFor();
    expect(errors).toEqual([]);

    await screenshot(page, 'mobile-chat');
    mkdirSync(join(repoRoot, 'docs'), { recursive: true });
    await page.screenshot({ path: join(repoRoot, 'docs/mobile.png') });

    // The server stored the visitor's message once, on the mobile channel.
    const token = await page.evaluate(() => {
      const raw = localStorage.getItem('jamuna.session');
      return raw ? (JSON.parse(raw) as { access_token: string }).access_token : '';
    });
    const list = (await (await fetch(`${server.url}/api/v1/conversations`, { headers: { Authorization: `Bearer ${token}` } })).json()) as {
      items: { id: string; channel: string }[];
    };
    expect(list.items.map((c) => c.channel)).toEqual(['mobile']);
    await context.close();
  });
});
