import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { adminApi, adminLogin, screenshot, type Server, setUp, tearDown } from './harness';

let server: Server;
let browser: Browser;

beforeEach(async () => {
  ({ server, browser } = await setUp());
});
afterEach((ctx) => tearDown(ctx, server, browser));

const MORTGAGE = 'Do you offer mortgages?';

describe('the Examples tab, in a real browser', () => {
  it('lists the labelled examples, filters them by intent and removes one', async () => {
    const call = await adminApi(server);
    await call('POST', '/api/v1/kb/examples', { text: 'Where is my new card?', intent: 'card_arrival', answer: 'New cards arrive within 5 working days.' });
    await call('POST', '/api/v1/kb/examples', { text: 'My card has not arrived yet', intent: 'card_arrival' });
    await call('POST', '/api/v1/kb/examples', { text: MORTGAGE, intent: 'out_of_scope' });
    await call('POST', '/api/v1/kb/examples', { text: 'I want a home loan', intent: 'out_of_scope' });

    const page = await adminLogin(await browser.newContext({ viewport: { width: 1400, height: 900 } }), server, '#/kb');
    await page.getByRole('tab', { name: 'Examples' }).click();
    const examples = page.getByRole('region', { name: 'Examples' });
    await examples.getByRole('cell', { name: MORTGAGE, exact: true }).waitFor({ timeout: 30_000 });
    expect(await examples.getByTestId('examples-range').innerText()).toBe('1–4 of 4');

    // The reserved intent reads as what it does.
    await examples.getByRole('combobox', { name: 'Intent' }).selectOption('out_of_scope');
    await expect.poll(async () => examples.getByTestId('examples-range').innerText(), { timeout: 10_000 }).toBe('1–2 of 2');
    expect(await examples.getByRole('cell', { name: 'hand to a person', exact: true }).count()).toBe(2);
    await screenshot(page, 'examples-tab');

    // Remove one, after the confirmation.
    page.once('dialog', (d) => void d.accept());
    await examples.getByRole('button', { name: `Remove ${MORTGAGE}` }).click();
    await expect.poll(async () => examples.getByTestId('examples-range').innerText(), { timeout: 10_000 }).toBe('1–1 of 1');
    expect(await examples.getByRole('cell', { name: MORTGAGE, exact: true }).count()).toBe(0);
    const left = await call<{ total: number; intents: Record<string, number> }>('GET', '/api/v1/kb/examples');
    expect(left.total).toBe(3);
    expect(left.intents).toEqual({ card_arrival: 2, out_of_scope: 1 });
  });
});
