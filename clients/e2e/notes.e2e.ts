/**
 * Private notes with @mentions (issue 19, item 1) in a real browser: an agent
 * writes a note mentioning a colleague with the `@` picker; the customer's
 * widget shows none of it (and gets no frame for it); the colleague finds it
 * under Mentions, live, and in the conversation.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { adminApi, adminLogin, screenshot, type Server, setUp, tearDown, widgetSend } from './harness';

let server: Server;
let browser: Browser;

beforeEach(async () => {
  ({ server, browser } = await setUp());
});
afterEach((ctx) => tearDown(ctx, server, browser));

const NOTE = 'Refund approved by finance, VIP customer';
const BO = { email: 'bo@demo.example', password: 'a strong password 2', name: 'Bo Berg' };

/** The widget, with every WebSocket frame it receives recorded in `frames`. */
async function widgetRecordingFrames(context: BrowserContext, frames: string[]): Promise<Page> {
  const page = await context.newPage();
  page.on('websocket', (ws) => ws.on('framereceived', (f) => frames.push(String(f.payload))));
  await page.goto(`${server.url}/?key=${encodeURIComponent(server.widgetKey)}`);
  await page.getByRole('button', { name: /open chat/i }).click();
  await page.getByLabel('Your message').waitFor();
  return page;
}

/** Signs Bo in to the dashboard. */
async function boLogin(context: BrowserContext, path: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${server.url}/admin/${path}`);
  await page.getByLabel('Workspace').fill('demo');
  await page.getByLabel('E-mail').fill(BO.email);
  await page.getByLabel('Password').fill(BO.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('connection').getByText('Live').waitFor();
  return page;
}

describe('private notes in a real browser', () => {
  it('an agent notes and mentions a colleague; the customer sees nothing; the colleague finds it under Mentions', async () => {
    const call = await adminApi(server);
    const bo = await call<{ id: string }>('POST', '/api/v1/users', { ...BO, role: 'agent' });

    const frames: string[] = [];
    const visitor = await widgetRecordingFrames(await browser.newContext({ viewport: { width: 1280, height: 800 } }), frames);
    await visitor.getByRole('button', { name: 'Talk to a human' }).click();
    await visitor.locator('.jw-notice[data-notice="HandoffRequested"]').waitFor();
    await widgetSend(visitor, 'Where is my refund?');
    await visitor.locator('.jw-msg[data-role="customer"][data-state="sent"]').waitFor();

    // Bo watches his mentions (none yet).
    const boPage = await boLogin(await browser.newContext({ viewport: { width: 1400, height: 860 } }), '#/inbox/mentions');
    await boPage.getByText('Nobody has mentioned you yet').waitFor();

    // The admin opens the conversation and writes a note, picking Bo with the keyboard.
    const agent = await adminLogin(await browser.newContext({ viewport: { width: 1400, height: 860 } }), server, '#/inbox/all');
    await agent.locator('a.conv').first().click();
    await agent.locator('.line[data-role="customer"]').first().waitFor();
    await agent.getByRole('tab', { name: 'Note' }).click();
    const box = agent.getByLabel('Private note');
    await box.fill('Please check @b');
    const picker = agent.getByRole('listbox', { name: 'Mention a colleague' });
    await picker.waitFor();
    await expect.poll(() => picker.getByRole('option').allInnerTexts()).toEqual([expect.stringContaining('Bo Berg')]);
    await box.press('Escape');
    await picker.waitFor({ state: 'detached' });
    await box.pressSequentially('o');
    await picker.waitFor();
    await box.press('ArrowDown');
    await expect.poll(() => picker.getByRole('option', { selected: true }).innerText()).toContain('Bo Berg');
    await box.press('Enter');
    await expect.poll(() => box.inputValue()).toBe('Please check @Bo Berg ');
    await box.pressSequentially(`: ${NOTE}`);
    await box.press('Enter');
    const note = agent.locator('.line[data-role="note"]');
    await note.getByText(`Please check @Bo Berg : ${NOTE}`).waitFor();
    expect(await note.locator('.note-label').innerText()).toMatch(/private note/i);
    expect(await note.locator('.note-mentions').innerText()).toContain('Bo Berg');

    // Then a reply the customer does get: it arrives after the note, and the note never did.
    await agent.getByRole('tab', { name: 'Reply' }).click();
    await agent.getByLabel('Reply').fill('We are on it.');
    await agent.getByLabel('Reply').press('Enter');
    await visitor.locator('.jw-msg[data-role="agent"]').getByText('We are on it.').waitFor({ timeout: 30_000 });
    expect(await visitor.locator('body').innerText()).not.toContain('Refund approved');
    expect(frames.some((f) => f.includes('We are on it.'))).toBe(true);
    for (const f of frames) {
      expect(f).not.toContain('NoteAdded');
      expect(f).not.toContain('Refund approved');
      expect(f).not.toContain(bo.id);
    }

    // Bo: the mention appears live; opening it shows the note in the conversation.
    const row = boPage.locator('a.conv[data-mention]').first();
    await row.waitFor({ timeout: 30_000 });
    expect(await row.innerText()).toContain('mentioned you');
    await row.click();
    const seen = boPage.locator('.line[data-role="note"]');
    await seen.getByText(NOTE, { exact: false }).waitFor();
    await boPage.locator('.line[data-role="agent"]').getByText('We are on it.').waitFor();
    await boPage.getByRole('tab', { name: 'Note' }).click();
    await boPage.getByLabel('Private note').fill('Calling them now, cc @de');
    await boPage.getByRole('listbox', { name: 'Mention a colleague' }).waitFor();
    await boPage.waitForTimeout(300);
    const shot = await screenshot(boPage, 'notes');
    expect(shot).toMatch(/notes\.png$/);

    // The REST detail agrees: the customer's is without the note, staff's with it.
    const detail = await call<{ events: { event: { type: string; mentions?: string[] } }[] }>('GET', `/api/v1/conversations/${(await row.getAttribute('data-conversation')) ?? ''}`);
    expect(detail.events.find((e) => e.event.type === 'NoteAdded')?.event.mentions).toEqual([bo.id]);
  });
});
