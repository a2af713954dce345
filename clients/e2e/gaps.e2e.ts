import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { adminLogin, openWidget, screenshot, type Server, setUp, tearDown, widgetSend } from './harness';

let server: Server;
let browser: Browser;

beforeEach(async () => {
  ({ server, browser } = await setUp());
});
afterEach((ctx) => tearDown(ctx, server, browser));

const QUESTION = 'Can I bring my pet iguana on board the plane?';
const REPLY = 'Iguanas travel in the hold, in an approved carrier; book the pet place at least 48 hours ahead.';

describe('the Gaps tab, in a real browser', () => {
  it('a question the bot could not answer shows up as a gap with the agent reply, and one click turns the reply into an article', async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const agent = await adminLogin(context, server, '#/inbox/pending');

    // The bot does not know about iguanas: it hands the question to a human.
    const visitor = await openWidget(await browser.newContext({ viewport: { width: 1280, height: 800 } }), server);
    await widgetSend(visitor, QUESTION);
    await visitor.locator('.jw-notice[data-notice="HandoffRequested"]').waitFor({ timeout: 60_000 });

    // An agent answers it from the inbox.
    const row = agent.locator('a.conv').first();
    await row.waitFor({ timeout: 30_000 });
    await row.click();
    await agent.locator('.line[data-role="customer"]').getByText(QUESTION).waitFor();
    const reply = agent.getByLabel('Reply');
    await reply.fill(REPLY);
    await reply.press('Enter');
    await visitor.locator('.jw-msg[data-role="agent"]').getByText(REPLY).waitFor({ timeout: 30_000 });

    // The admin finds it under Knowledge → Gaps, with the agent's reply beside it.
    await agent.goto(`${server.url}/admin/#/kb`);
    await agent.getByRole('tab', { name: 'Gaps' }).click();
    const gap = agent.getByRole('article', { name: QUESTION });
    await expect
      .poll(
        async () => {
          if (!(await gap.isVisible())) {
            await agent.getByRole('tab', { name: 'Articles' }).click();
            await agent.getByRole('tab', { name: 'Gaps' }).click();
            return false;
          }
          return (await gap.innerText()).includes(REPLY);
        },
        { timeout: 60_000, interval: 1000 },
      )
      .toBe(true);
    expect(await gap.innerText()).toMatch(/1×/);
    await screenshot(agent, 'gaps-tab');

    // One click: the article editor opens with the question as title and the reply as body.
    await gap.getByRole('button', { name: 'Make an article from this reply' }).click();
    const editor = agent.getByRole('form', { name: 'New article' });
    await expect.poll(() => editor.getByLabel('Title').inputValue()).toBe(QUESTION);
    expect(await editor.getByLabel('Body').inputValue()).toBe(REPLY);
    await editor.getByRole('button', { name: 'Save' }).click();

    // The article exists; the bot now answers the question from it.
    await agent.getByRole('tab', { name: 'Articles' }).click();
    await agent.getByRole('cell', { name: QUESTION }).first().waitFor({ timeout: 30_000 });
    const next = await openWidget(await browser.newContext({ viewport: { width: 1280, height: 800 } }), server);
    await widgetSend(next, QUESTION);
    await expect
      .poll(async () => next.locator('.jw-msg[data-role="bot"]').allInnerTexts(), { timeout: 60_000, interval: 1000 })
      .toEqual(expect.arrayContaining([expect.stringContaining('approved carrier')]));
  });
});
