import { ApiClient, MemoryStore, Session } from '@jamuna/protocol';
import { attachmentFiles, cacheName, dataUri } from './attachments';

describe('attachments on the phone', () => {
  it('a data URI carries the server content type and the exact bytes', async () => {
    const bytes = new Uint8Array([0, 1, 2, 250, 251, 252, 253]);
    expect(await dataUri(new Blob([bytes]), 'image/gif')).toBe(`data:image/gif;base64,${Buffer.from(bytes).toString('base64')}`);
  });

  it('on the phone the blob is read by FileReader (natively), and labelled with the server content type', async () => {
    class FakeReader {
      result: string | null = null;
      error = null;
      onload: (() => void) | null = null;
      onerror: (() => void) | null = null;
      readAsDataURL(): void {
        this.result = 'data:application/octet-stream;base64,AAEC';
        this.onload?.();
      }
    }
    const g = globalThis as { FileReader?: unknown };
    g.FileReader = FakeReader;
    try {
      expect(await dataUri(new Blob([new Uint8Array([0, 1, 2])]), 'image/png')).toBe('data:image/png;base64,AAEC');
    } finally {
      delete g.FileReader;
    }
  });

  it('cache names keep the id and lose path separators and control characters', () => {
    expect(cacheName({ id: 'a1', name: '../etc/pass\nwd?.txt', content_type: 'text/plain', size: 1 })).toBe('a1-.._etc_pass_wd_.txt');
    expect(cacheName({ id: 'a2', name: { erased: true }, content_type: 'text/plain', size: 1 })).toBe('a2-[erased]');
  });

  it('images are fetched once with the bearer token; on the web as object URLs', async () => {
    const seen: { url: string; auth: string | undefined }[] = [];
    const fakeFetch = (async (url: string, init?: { headers?: Record<string, string> }) => {
      seen.push({ url, auth: init?.headers?.Authorization });
      return new Response(new Blob(['GIF89a']));
    }) as unknown as typeof fetch;
    const api = new ApiClient('http://jamuna.test', new Session(new MemoryStore(), 's'), fakeFetch);
    api.session.set({ access_token: 'at', refresh_token: 'rt', token_type: 'Bearer', expires_in: 900, user_id: 'u', tenant: 'demo', role: 'customer' });

    const phone = attachmentFiles(api, 'c1', 'android');
    const [a, b] = await Promise.all([phone.imageUri('g1', 'image/gif'), phone.imageUri('g1', 'image/gif')]);
    expect(a).toBe(`data:image/gif;base64,${Buffer.from('GIF89a').toString('base64')}`);
    expect(b).toBe(a);
    expect(seen).toEqual([{ url: 'http://jamuna.test/api/v1/conversations/c1/attachments/g1', auth: 'Bearer at' }]);

    const createObjectURL = jest.fn(() => 'blob:http://jamuna.test/1');
    const real = URL.createObjectURL;
    URL.createObjectURL = createObjectURL;
    try {
      expect(await attachmentFiles(api, 'c1', 'web').imageUri('g1', 'image/gif')).toBe('blob:http://jamuna.test/1');
      expect(createObjectURL).toHaveBeenCalledTimes(1);
    } finally {
      URL.createObjectURL = real;
    }
  });
});
