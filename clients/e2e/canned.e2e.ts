import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { adminApi, adminLogin, openWidget, screenshot, type Server, setUp, tearDown, widgetSend } from './harness';

let server: Server;
let browser: Browser;

beforeEach(async () => {
  ({ server, browser } = await setUp());
});
afterEach((ctx) => tearDown(ctx, server, browser));

const AGENT = { email: 'ana@demo.example', password: 'ana-agent-password-1', name: 'Ana Agent' };

/** Signs in to the dashboard as the agent and waits for the live socket. */
async function agentLogin(context: BrowserContext, path: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${server.url}/admin/${path}`);
  await page.getByLabel('Workspace').fill(server.admin.tenant);
  await page.getByLabel('E-mail').fill(AGENT.email);
  await page.getByLabel('Password').fill(AGENT.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('connection').getByText('Live').waitFor();
  return page;
}

describe('canned replies, in a real browser', () => {
  it('an admin adds a reply with {{agent.name}}; an agent picks it with / and the keyboard; the customer sees it rendered', async () => {
    const call = await adminApi(server);
    await call('POST', '/api/v1/users', { ...AGENT, role: 'agent' });
    await call('POST', '/api/v1/canned-replies', { shortcut: 'thanks-bye', text: 'Thanks for chatting, goodbye!' });

    // The admin adds a reply on the settings page.
    const adminContext = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const admin = await adminLogin(adminContext, server, '#/settings');
    const section = admin.getByRole('region', { name: 'Canned replies' });
    await section.getByTestId('canned-list').locator('strong', { hasText: '/thanks-bye' }).waitFor();
    await section.getByLabel(/Shortcut/).fill('thanks-wait');
    await section.getByLabel('Text').fill('Thanks for waiting, {{customer.nmae}}!');
    await section.getByText('Unknown placeholder: {{customer.nmae}}').waitFor();
    await section.getByLabel('Text').fill('Thanks for waiting, {{customer.name}}! This is {{agent.name}}, happy to help.');
    await section.getByRole('button', { name: 'Add reply' }).click();
    await section.getByText('Added /thanks-wait.').waitFor();
    await section.getByTestId('canned-list').locator('strong', { hasText: '/thanks-wait' }).waitFor();

    // A customer asks for a human.
    const visitorContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const visitor = await openWidget(visitorContext, server);
    await visitor.getByRole('button', { name: 'Talk to a human' }).click();
    await visitor.locator('.jw-notice[data-notice="HandoffRequested"]').waitFor();
    await widgetSend(visitor, 'Hello, is anyone there?');
    await visitor.locator('.jw-msg[data-role="customer"][data-state="sent"]').waitFor();

    // The agent opens it and types "/thank": both replies match, by shortcut.
    const agentContext = await browser.newContext({ viewport: { width: 1400, height: 860 } });
    const agent = await agentLogin(agentContext, '#/inbox/all');
    await agent.locator('a.conv').first().click({ timeout: 30_000 });
    await agent.locator('.line[data-role="customer"]').first().waitFor();
    const reply = agent.getByLabel('Reply');
    await reply.click();
    await reply.pressSequentially('/thank');
    const options = agent.getByRole('listbox', { name: 'Canned replies' }).getByRole('option');
    await expect.poll(() => options.allInnerTexts()).toEqual([
      '/thanks-bye Thanks for chatting, goodbye!',
      '/thanks-wait Thanks for waiting, there! This is Ana Agent, happy to help.',
    ]);
    await reply.press('ArrowDown');
    await expect.poll(() => options.nth(1).getAttribute('aria-selected')).toBe('true');
    await screenshot(agent, 'canned-replies-picker');

    // Enter inserts the rendered reply (and does not send); Enter again sends it.
    await reply.press('Enter');
    const rendered = 'Thanks for waiting, there! This is Ana Agent, happy to help.';
    await expect.poll(() => reply.inputValue()).toBe(rendered);
    expect(await agent.getByRole('listbox').count()).toBe(0);
    expect(await agent.locator('.line[data-role="agent"]').count()).toBe(0);
    await reply.press('Enter');

    await visitor.locator('.jw-msg[data-role="agent"]').getByText(rendered).waitFor({ timeout: 30_000 });
    expect(await visitor.getByText(/\{\{|\}\}/).count()).toBe(0);
    await screenshot(visitor, 'canned-replies-widget');
  });
});
