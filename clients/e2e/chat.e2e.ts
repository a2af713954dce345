import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import type { ConversationDetail, ConversationSummary, Page as ApiPage } from '@jamuna/protocol';
import { adminApi, adminLogin, openWidget, screenshot, type Server, setUp, tearDown, widgetSend } from './harness';

let server: Server;
let browser: Browser;

beforeEach(async () => {
  ({ server, browser } = await setUp());
});
afterEach((ctx) => tearDown(ctx, server, browser));

/** The texts of the widget's messages of one role, in order. */
async function widgetTexts(page: Page, role: 'customer' | 'bot' | 'agent'): Promise<string[]> {
  return page.locator(`.jw-msg[data-role="${role}"] .jw-bubble`).allInnerTexts();
}

async function dashboardTexts(page: Page, role: 'customer' | 'bot' | 'agent'): Promise<string[]> {
  return page.locator(`.line[data-role="${role}"] .line-text`).allInnerTexts();
}

async function onlyConversation(server: Server): Promise<ConversationDetail> {
  const call = await adminApi(server);
  const list = await call<ApiPage<ConversationSummary>>('GET', '/api/v1/conversations?view=all');
  expect(list.items).toHaveLength(1);
  return call<ConversationDetail>('GET', `/api/v1/conversations/${list.items[0]!.id}`);
}

describe('the chat widget and the dashboard, in a real browser', () => {
  it('1. a visitor asks what the knowledge base answers and sees the bot answer with its source', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await openWidget(context, server);
    await widgetSend(page, 'When will my new card arrive?');

    const mine = page.locator('.jw-msg[data-role="customer"]');
    await expect.poll(() => mine.getAttribute('data-state')).toBe('sent');
    const answer = page.locator('.jw-msg[data-role="bot"]').first();
    await answer.waitFor({ timeout: 60_000 });
    await answer.locator('[data-article="card-delivery"]').waitFor();
    expect(await answer.locator('.jw-sources').innerText()).toContain('When will my new card arrive?');
    expect(await answer.locator('.jw-bubble').innerText()).toMatch(/5 working days/);

    // "This helped" is recorded as feedback on that answer.
    await answer.getByRole('button', { name: /this helped/i }).click();
    await answer.getByText('Glad it helped!').waitFor();
    await screenshot(page, '1-widget-bot-answer');

    // A reload continues the same conversation (the visitor token is kept).
    await page.reload();
    await page.getByRole('button', { name: /open chat/i }).click();
    await page.locator('.jw-msg[data-role="bot"]').first().waitFor();
    expect(await widgetTexts(page, 'customer')).toEqual(['When will my new card arrive?']);

    // Phone width.
    await page.setViewportSize({ width: 375, height: 720 });
    await page.waitForTimeout(500);
    await screenshot(page, '1-widget-phone');
    const detail = await onlyConversation(server);
    expect(detail.events.some((e) => e.event.type === 'FeedbackGiven')).toBe(true);
  });

  it('2. a visitor asks for a human, an agent sees it live, replies, and the bot stays silent', async () => {
    const agentContext = await browser.newContext({ viewport: { width: 1400, height: 860 } });
    const agent = await adminLogin(agentContext, server, '#/inbox/pending');
    await agent.getByText('No conversations here').waitFor();

    const visitorContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const visitor = await openWidget(visitorContext, server);
    await visitor.getByRole('button', { name: 'Talk to a human' }).click();
    await visitor.locator('.jw-notice[data-notice="HandoffRequested"]').waitFor();
    await widgetSend(visitor, 'Hello, I have a problem with my account');
    await visitor.locator('.jw-msg[data-role="customer"][data-state="sent"]').waitFor();

    // Live in the agent's inbox, without a reload.
    const row = agent.locator('a.conv').first();
    await row.waitFor({ timeout: 30_000 });
    await expect.poll(() => row.innerText()).toContain('needs a human');
    await row.click();
    await agent.locator('.line[data-role="customer"]').first().waitFor();
    const reply = agent.getByLabel('Reply');
    await reply.fill('Hi, this is Sam from the support team. How can I help?');
    await reply.press('Enter');

    await visitor.locator('.jw-msg[data-role="agent"]').getByText('Hi, this is Sam from the support team. How can I help?').waitFor({ timeout: 30_000 });
    // The agent's display name, not a bare "agent", once the widget has looked it up.
    await visitor.getByText('Demo Admin from the team has joined').waitFor();
    await visitor.locator('.jw-msg[data-role="agent"] .jw-author').getByText('Demo Admin').first().waitFor();

    // A question the bot could answer now goes to the human only.
    await widgetSend(visitor, 'When will my new card arrive?');
    await agent.locator('.line[data-role="customer"]').getByText('When will my new card arrive?').waitFor({ timeout: 30_000 });
    await reply.fill('It should arrive within 5 working days.');
    await reply.press('Enter');
    await visitor.locator('.jw-msg[data-role="agent"]').getByText('It should arrive within 5 working days.').waitFor();
    await agent.waitForTimeout(1500);
    await screenshot(visitor, '2-widget-agent-reply');
    await screenshot(agent, '2-dashboard-conversation');

    const detail = await onlyConversation(server);
    const handoff = detail.events.find((e) => e.event.type === 'HandoffRequested');
    expect(handoff?.event).toEqual({ type: 'HandoffRequested', reason: 'customer_asked' });
    const botAfter = detail.events.filter((e) => e.event.type === 'BotAnswered' && e.version > handoff!.version);
    expect(botAfter).toEqual([]);
    expect(await visitor.locator('.jw-msg[data-role="bot"]').count()).toBe(detail.events.filter((e) => e.event.type === 'BotAnswered').length);
  });

  it('3. messages sent while the network is cut arrive exactly once, in order, on both sides', async () => {
    const visitorContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const visitor = await openWidget(visitorContext, server);
    await visitor.getByRole('button', { name: 'Talk to a human' }).click();
    await visitor.locator('.jw-notice[data-notice="HandoffRequested"]').waitFor();
    await widgetSend(visitor, 'Hello, I need a person please');
    await visitor.locator('.jw-msg[data-role="customer"][data-state="sent"]').waitFor();

    const agentContext = await browser.newContext({ viewport: { width: 1400, height: 860 } });
    const agent = await adminLogin(agentContext, server, '#/inbox/all');
    await agent.locator('a.conv').first().click();
    await agent.getByLabel('Reply').fill('I am here.');
    await agent.getByLabel('Reply').press('Enter');
    await visitor.locator('.jw-msg[data-role="agent"]').getByText('I am here.').waitFor();

    await visitorContext.setOffline(true);
    await visitor.getByText('You are offline').waitFor();
    const offline = ['offline one', 'offline two', 'offline three'];
    for (const t of offline) await widgetSend(visitor, t);
    await expect.poll(async () => visitor.locator('.jw-msg[data-state="sending"]').count()).toBe(3);
    // Kept in localStorage while offline.
    const stored = await visitor.evaluate(() => Object.keys(localStorage).filter((k) => k.includes('.outbox.')).map((k) => localStorage.getItem(k) ?? ''));
    expect(stored.join()).toContain('offline three');
    await screenshot(visitor, '3-widget-offline');

    // Meanwhile the agent writes; the visitor gets it after the network is back.
    await agent.getByLabel('Reply').fill('Are you still there?');
    await agent.getByLabel('Reply').press('Enter');

    await visitorContext.setOffline(false);
    await expect.poll(async () => visitor.locator('.jw-msg[data-state="sending"]').count(), { timeout: 30_000 }).toBe(0);
    await visitor.locator('.jw-msg[data-role="agent"]').getByText('Are you still there?').waitFor({ timeout: 30_000 });
    for (const t of offline) await agent.locator('.line[data-role="customer"]').getByText(t).waitFor({ timeout: 30_000 });

    // Once more after the socket came back: a plain message goes through live.
    await widgetSend(visitor, 'back online');
    await agent.locator('.line[data-role="customer"]').getByText('back online').waitFor({ timeout: 30_000 });
    await agent.waitForTimeout(1000);

    const expected = ['Hello, I need a person please', ...offline, 'back online'];
    expect(await widgetTexts(visitor, 'customer')).toEqual(expected);
    expect(await dashboardTexts(agent, 'customer')).toEqual(expected);
    expect(await widgetTexts(visitor, 'agent')).toEqual(['I am here.', 'Are you still there?']);
    expect(await dashboardTexts(agent, 'agent')).toEqual(['I am here.', 'Are you still there?']);
    // And in the log itself: once each, in order.
    const detail = await onlyConversation(server);
    const stored2 = detail.events.flatMap((e) => (e.event.type === 'MessagePosted' && e.event.author.kind === 'customer' ? [e.event.text] : []));
    expect(stored2).toEqual(expected);
    await screenshot(visitor, '3-widget-back-online');
  });

  it('4. an admin sees the conversation counted on the analytics page', async () => {
    const visitorContext = await browser.newContext();
    const visitor = await openWidget(visitorContext, server);
    await widgetSend(visitor, 'How long does a bank transfer take?');
    await visitor.locator('.jw-msg[data-role="bot"]').first().waitFor({ timeout: 60_000 });

    const adminContext = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const admin = await adminLogin(adminContext, server, '#/analytics');
    const kpi = admin.getByTestId('kpi-conversations');
    await expect
      .poll(
        async () => {
          await admin.getByRole('button', { name: '7 days' }).click();
          await admin.getByRole('button', { name: '30 days' }).click();
          return Number(await kpi.innerText());
        },
        { timeout: 30_000, interval: 1000 },
      )
      .toBe(1);
    await admin.locator('.recharts-surface').first().waitFor();
    await screenshot(admin, '4-dashboard-analytics');

    // The inbox, for the README.
    await admin.goto(`${server.url}/admin/#/inbox/all`);
    await admin.locator('a.conv').first().click();
    await admin.locator('.line[data-role="bot"]').first().waitFor();
    // Staff see why the bot answered (issue 18); the visitor's widget does not.
    const why = admin.locator('.line[data-role="bot"] [data-testid="why"]').first();
    expect(await why.innerText()).toMatch(/^Why: (retrieval — best passage \d\.\d\d ≥ minimum \d\.\d\d|intent head — confidence \d\.\d\d ≥ threshold \d\.\d\d)/);
    expect(await visitor.getByText(/Why:/).count()).toBe(0);
    await screenshot(admin, '4-dashboard-inbox');
  });
});
