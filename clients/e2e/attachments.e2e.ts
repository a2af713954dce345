import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import type { Browser } from 'playwright-core';
import { adminLogin, openWidget, screenshot, type Server, setUp, tearDown, watchCsp, widgetSend } from './harness';

let server: Server;
let browser: Browser;

beforeEach(async () => {
  ({ server, browser } = await setUp());
});
afterEach((ctx) => tearDown(ctx, server, browser));

/** A real PNG (a blue card with a red stripe), so the thumbnails have something to show. */
function png(width: number, height: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer): number => {
    let c = 0xffffffff;
    for (const byte of b) c = (crcTable[(c ^ byte) & 0xff] ?? 0) ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const rows: number[] = [];
  for (let y = 0; y < height; y++) {
    rows.push(0);
    for (let x = 0; x < width; x++) rows.push(...(y > height * 0.3 && y < height * 0.45 ? [220, 40, 60] : [30, 90, 200 + (x % 40)]));
  }
  return Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'binary'), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.from(rows))), chunk('IEND', Buffer.alloc(0))]);
}

const PDF = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');

describe('attachments, in a real browser', () => {
  it('a customer attaches an image in the widget, the agent sees it and replies with a PDF the customer downloads', async () => {
    const visitorContext = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    const visitor = await openWidget(visitorContext, server);
    await visitor.getByRole('button', { name: 'Talk to a human' }).click();
    await visitor.locator('.jw-notice[data-notice="HandoffRequested"]').waitFor();
    await widgetSend(visitor, 'My new card arrived broken');
    await visitor.locator('.jw-msg[data-role="customer"][data-state="sent"]').waitFor();

    // The picker: the image goes with the text typed beside it.
    await visitor.getByLabel('Your message').fill('Here is a photo');
    await visitor.getByTestId('jw-file').setInputFiles({ name: 'broken-card.png', mimeType: 'image/png', buffer: png(160, 100) });
    const thumb = visitor.locator('.jw-msg[data-role="customer"] img.jw-thumb');
    await thumb.waitFor({ timeout: 30_000 });
    await expect.poll(() => thumb.evaluate((img: HTMLImageElement) => img.naturalWidth)).toBe(160);
    expect(await thumb.getAttribute('alt')).toBe('broken-card.png');
    expect(await visitor.locator('.jw-msg[data-role="customer"] .jw-bubble').allInnerTexts()).toContain('Here is a photo');

    // A renamed program is refused, and the widget says why.
    await visitor.getByTestId('jw-file').setInputFiles({ name: 'photo.png', mimeType: 'image/png', buffer: Buffer.from('MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff', 'binary') });
    await visitor.getByRole('alert').getByText(/images, PDF and text files can/).waitFor();

    // The agent sees the preview in the dashboard, and replies with a PDF.
    const agentContext = await browser.newContext({ viewport: { width: 1400, height: 860 } });
    const violations = watchCsp(agentContext);
    const agent = await adminLogin(agentContext, server, '#/inbox/all');
    await agent.locator('a.conv').first().click();
    const preview = agent.locator('.line[data-role="customer"] img.thumb');
    await preview.waitFor({ timeout: 30_000 });
    await expect.poll(() => preview.evaluate((img: HTMLImageElement) => img.naturalWidth)).toBe(160);
    await agent.getByLabel('Reply').fill('Sorry about that! Please fill in this replacement form.');
    await agent.getByTestId('attach-input').setInputFiles({ name: 'replacement-form.pdf', mimeType: 'application/pdf', buffer: PDF });
    await agent.locator('.line[data-role="agent"] button.file').getByText('replacement-form.pdf').waitFor({ timeout: 30_000 });

    // The customer gets it as a download with its name and size, and saves the very bytes.
    const file = visitor.locator('.jw-msg[data-role="agent"] button.jw-file');
    await file.waitFor({ timeout: 30_000 });
    expect(await file.innerText()).toMatch(/replacement-form\.pdf\s+\d+ B/);
    expect(await visitor.locator('.jw-msg[data-role="agent"] .jw-bubble').allInnerTexts()).toContain('Sorry about that! Please fill in this replacement form.');
    const [download] = await Promise.all([visitor.waitForEvent('download'), file.click()]);
    expect(download.suggestedFilename()).toBe('replacement-form.pdf');
    const saved = await download.path();
    expect(readFileSync(saved).equals(PDF)).toBe(true);

    await agent.waitForTimeout(500);
    await screenshot(visitor, 'attachments-widget');
    await screenshot(agent, 'attachments-dashboard');
    expect(violations).toEqual([]);
  });
});
