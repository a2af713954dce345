import { describe, expect, it, vi } from 'vitest';
import { AttachmentUrls } from './attachments';
import { ApiClient } from './rest';
import { Session } from './session';
import { MemoryStore } from './storage';
import { formatSize, isImage } from './types';

function client(responses: Response[], calls: { url: string; init?: RequestInit }[]): ApiClient {
  const session = new Session(new MemoryStore(), 'session');
  session.set({ access_token: 'at', refresh_token: 'rt', token_type: 'Bearer', expires_in: 900, user_id: 'u1', tenant: 't', role: 'customer' });
  return new ApiClient('http://api', session, async (url, init) => {
    calls.push({ url: String(url), init });
    return responses.shift() ?? new Response(null, { status: 500 });
  });
}

describe('attachments over REST', () => {
  it('uploads raw bytes with the name in the query, and posts a message of files only', async () => {
    const calls: { url: string; init?: RequestInit }[] = [];
    const up = { id: 'f1', name: 'a b.png', content_type: 'image/png', size: 3 };
    const api = client([Response.json(up, { status: 201 }), Response.json({ conversation_id: 'c1', client_message_id: 'm1', version: 2, duplicate: false }, { status: 201 })], calls);
    const file = new Blob([new Uint8Array([1, 2, 3])]);
    expect(await api.uploadAttachment('c1', file, 'a b.png')).toEqual(up);
    expect(calls[0]?.url).toBe('http://api/api/v1/conversations/c1/attachments?name=a%20b.png');
    expect(calls[0]?.init?.body).toBe(file);
    expect((calls[0]?.init?.headers as Record<string, string>)['Content-Type']).toBe('application/octet-stream');
    await api.postMessage('c1', 'm1', '  ', ['f1']);
    expect(JSON.parse(String(calls[1]?.init?.body))).toEqual({ client_message_id: 'm1', attachments: ['f1'] });
  });

  it('downloads with the bearer token and reports a gone file by its code', async () => {
    const calls: { url: string; init?: RequestInit }[] = [];
    const api = client([new Response(new Uint8Array([7, 8]), { status: 200 }), Response.json({ error: { code: 'gone', message: 'attachment is gone' } }, { status: 410 })], calls);
    const blob = await api.downloadAttachment('c1', 'f1');
    expect(new Uint8Array(await blob.arrayBuffer())).toEqual(new Uint8Array([7, 8]));
    expect((calls[0]?.init?.headers as Record<string, string>).Authorization).toBe('Bearer at');
    await expect(api.downloadAttachment('c1', 'f2')).rejects.toMatchObject({ status: 410, code: 'gone' });
  });
});

describe('attachment object URLs', () => {
  it('fetch each file once, and dispose revokes every URL made and forgets them', async () => {
    const calls: { url: string; init?: RequestInit }[] = [];
    const api = client([new Response(new Uint8Array([1]), { status: 200 }), new Response(new Uint8Array([2]), { status: 200 })], calls);
    // The test environment has no object URLs of its own: count them.
    let made = 0;
    const revoked: string[] = [];
    const create = vi.fn(() => `blob:test/${++made}`);
    const revoke = vi.fn((u: string) => void revoked.push(u));
    vi.stubGlobal('URL', Object.assign(class extends URL {}, { createObjectURL: create, revokeObjectURL: revoke }));
    try {
      const urls = new AttachmentUrls(api);
      const first = await urls.url('c1', 'f1');
      expect(await urls.url('c1', 'f1')).toBe(first);
      expect(calls).toHaveLength(1);
      urls.dispose();
      expect(revoked).toEqual([first]);
      expect(await urls.url('c1', 'f1')).not.toBe(first);
      expect(calls).toHaveLength(2);
    } finally {
      vi.unstubAllGlobals();
    }
  });
});

describe('attachment helpers', () => {
  it('format sizes and tell images apart', () => {
    expect([formatSize(812), formatSize(14_540), formatSize(3_250_000)]).toEqual(['812 B', '14.2 KB', '3.1 MB']);
    expect([isImage('image/webp'), isImage('application/pdf'), isImage('text/plain')]).toEqual([true, false, false]);
  });
});

describe('attachment errors', () => {
  it('say what went wrong in words', async () => {
    const { attachmentError } = await import('./attachments');
    const { ApiError } = await import('./rest');
    expect(attachmentError(new ApiError(415, 'unsupported_media_type', 'x'))).toMatch(/images, PDF and text/);
    expect(attachmentError(new ApiError(413, 'payload_too_large', 'x'))).toBe('That file is too large.');
    expect(attachmentError(new Error('?'))).toBe('The file could not be sent.');
  });
});
