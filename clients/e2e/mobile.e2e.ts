/**
 * The mobile app's web build (Expo's export with react-native-web, served by
 * `jamuna serve` at /mobile/) in Chromium at a phone's size: a visitor chats
 * with the bot through the real server. Saves docs/mobile.png for the README when JAMUNA_UPDATE_DOCS=1.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { adminApi, launchBrowser, repoRoot, screenshot, startServer, type Server } from './harness';

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
    // The README's picture is refreshed on demand only, so a test run leaves the tree clean.
    if (process.env.JAMUNA_UPDATE_DOCS === '1') await page.screenshot({ path: join(repoRoot, 'docs/mobile.png') });

    // The server stored the visitor's message once, on the mobile channel.
    const token = await page.evaluate(() => {
      const raw = localStorage.getItem('jamuna.session');
      return raw ? (JSON.parse(raw) as { access_token: string }).access_token : '';
    });
    const list = (await (await fetch(`${server.url}/api/v1/conversations`, { headers: { Authorization: `Bearer ${token}` } })).json()) as {
      items: { id: string; channel: string }[];
    };
    expect(list.items.map((c) => c.channel)).toEqual(['mobile']);
    const id = list.items[0]!.id;

    // "Talk to a human": an agent takes it, replies, and resolves; the app follows live and asks for a rating.
    await page.getByRole('button', { name: 'Talk to a human' }).click();
    await page.getByText('Waiting for a person from the team').waitFor();
    const call = await adminApi(server);
    await call('POST', `/api/v1/conversations/${id}/assign`, {});
    await page.getByTestId('agent-avatar').waitFor();
    expect(await page.getByTestId('chat-title').innerText()).not.toBe('Support');
    await call('POST', `/api/v1/conversations/${id}/messages`, { client_message_id: 'e2e-agent-reply-0001', text: 'Hi, I am on it.' });
    await page.getByText('Hi, I am on it.').waitFor();
    await call('POST', `/api/v1/conversations/${id}/resolve`, {});
    await page.getByText('How did we do?').waitFor();
    await screenshot(page, 'mobile-agent-csat');
    await page.getByRole('button', { name: '5 of 5' }).click();
    await page.getByText('Thanks for your rating!').waitFor();
    const detail = await call<{ csat: number | null }>('GET', `/api/v1/conversations/${id}`);
    expect(detail.csat).toBe(5);
    await context.close();
  });

  it('a customer signs in with their account, writes, and finds the conversation in their list', async () => {
    const call = await adminApi(server);
    await call('POST', '/api/v1/users', { email: 'casey@customer.example', password: 'casey-password-1', name: 'Casey', role: 'customer' });
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const page = await context.newPage();
    await page.goto(`${server.url}/mobile/?key=${encodeURIComponent(server.widgetKey)}`);

    await page.getByLabel('E-mail').fill('casey@customer.example');
    await page.getByLabel('Password').fill('wrong password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('That e-mail and password do not match an account.').waitFor();
    await page.getByLabel('Password').fill('casey-password-1');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('No conversations yet.').waitFor();

    await page.getByRole('button', { name: 'New conversation' }).click();
    await page.getByLabel('Your message').fill('Can I change my delivery address?');
    await page.getByRole('button', { name: 'send' }).click();
    await expect.poll(() => page.getByLabel('Sent').count(), { timeout: 30_000 }).toBeGreaterThan(0);
    await page.getByRole('button', { name: 'Back to conversations' }).click();
    await page.getByText('Can I change my delivery address?').waitFor();
    expect(await page.getByText('No conversations yet.').count()).toBe(0);
    await context.close();
  });

  it('the bundle holds no server secrets: the web build reads the tenant key from the page address', async () => {
    const dir = join(repoRoot, 'clients/dist/mobile/_expo/static/js/web');
    const bundle = readdirSync(dir)
      .filter((f) => f.endsWith('.js'))
      .map((f) => readFileSync(join(dir, f), 'utf8'))
      .join('\n');
    expect(bundle.length).toBeGreaterThan(100_000);
    expect(bundle).not.toContain(server.widgetKey);
    expect(bundle).not.toMatch(/wk_[A-Za-z0-9]{8,}/);
    expect(bundle).not.toContain(server.admin.password);
    expect(bundle).not.toMatch(/JAMUNA_(JWT|SECRET|ADMIN)/);
  });
});
