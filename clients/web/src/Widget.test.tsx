import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { act, cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { Widget } from './Widget';
import type { WidgetConfig } from './config';

/** A WebSocket stand-in that answers auth with ready, sends with acks and events, like the gateway. */
class FakeWs {
  static all: FakeWs[] = [];
  readyState = 0;
  onopen: ((e: unknown) => void) | null = null;
  onmessage: ((e: { data: string }) => void) | null = null;
  onclose: ((e: { code: number }) => void) | null = null;
  onerror: ((e: unknown) => void) | null = null;
  version = 1;
  /** The frames the widget sent on this socket. */
  sent: { type: string; conversation_id?: string; after_version?: number }[] = [];
  /** Staff-only events (a note, tags) take these versions between a message and its answer: the widget never gets them. */
  static staffOnly = 0;
  constructor(readonly url: string) {
    FakeWs.all.push(this);
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.({});
    }, 0);
  }
  send(data: string): void {
    const f = JSON.parse(data) as { type: string; conversation_id?: string; client_message_id?: string; text?: string; after_version?: number };
    this.sent.push(f);
    const reply = (x: object): void => {
      setTimeout(() => this.onmessage?.({ data: JSON.stringify(x) }), 0);
    };
    if (f.type === 'auth') reply({ type: 'ready', user_id: 'v1', tenant: 'demo', role: 'customer' });
    if (f.type === 'send') {
      const v = ++this.version;
      const answer = v + 1 + FakeWs.staffOnly;
      reply({ type: 'ack', conversation_id: f.conversation_id, client_message_id: f.client_message_id, version: v, duplicate: false });
      reply({ type: 'event', conversation_id: f.conversation_id, version: v, position: v, occurred_at: new Date().toISOString(), event: { type: 'MessagePosted', author: { kind: 'customer' }, text: f.text, client_message_id: f.client_message_id } });
      reply({
        type: 'event',
        conversation_id: f.conversation_id,
        version: answer,
        position: answer,
        occurred_at: new Date().toISOString(),
        event: { type: 'BotAnswered', in_reply_to: v, text: 'Within 5 working days.', intent: 'card_arrival', confidence: 0.9, sources: [{ article_id: 'card-delivery', title: 'When will my new card arrive?', passage: 'New cards…', score: 0.8 }] },
      });
      this.version = answer;
    }
  }
  close(): void {
    this.readyState = 3;
  }
}

const config: WidgetConfig = { tenantKey: 'wk_test', apiBase: 'http://jamuna.test', title: 'Demo Bank', subtitle: 'Hi', color: '#000', articleUrl: '', open: false };

describe('Widget', () => {
  beforeEach(() => {
    localStorage.clear();
    FakeWs.all = [];
    FakeWs.staffOnly = 0;
    vi.stubGlobal('WebSocket', FakeWs);
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string) => {
        const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
        if (url.endsWith('/api/v1/auth/visitor')) return json(201, { access_token: 'at', refresh_token: 'rt', token_type: 'Bearer', expires_in: 900, user_id: 'v1', tenant: 'demo', role: 'customer' });
        if (url.endsWith('/api/v1/conversations')) return json(201, { id: 'c1' });
        return json(404, { error: { code: 'not_found', message: 'no' } });
      }),
    );
  });
  afterEach(() => {
    cleanup();
    vi.unstubAllGlobals();
  });

  it('opens from the launcher with focus in the composer, and Escape closes it back to the launcher', async () => {
    render(<Widget config={config} />);
    const launcher = screen.getByRole('button', { name: 'Open chat' });
    expect(launcher.getAttribute('aria-expanded')).toBe('false');
    fireEvent.click(launcher);
    const dialog = await screen.findByRole('dialog', { name: 'Chat with Demo Bank' });
    expect(document.activeElement).toBe(screen.getByLabelText('Your message'));
    expect(screen.getByRole('log', { name: 'Messages' }).getAttribute('aria-live')).toBe('polite');
    fireEvent.keyDown(dialog, { key: 'Escape' });
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(document.activeElement).toBe(screen.getByRole('button', { name: 'Open chat' }));
  });

  it('sends a message, shows it as sent, and shows the bot answer with its source', async () => {
    render(<Widget config={config} />);
    fireEvent.click(screen.getByRole('button', { name: 'Open chat' }));
    await waitFor(() => expect(screen.getByPlaceholderText('Write a message…')).toBeTruthy());
    const box = screen.getByLabelText('Your message');
    fireEvent.change(box, { target: { value: 'When will my card arrive?' } });
    await act(async () => {
      fireEvent.keyDown(box, { key: 'Enter' });
    });
    await screen.findByText('Within 5 working days.');
    expect(screen.getByText('When will my new card arrive?')).toBeTruthy();
    await waitFor(() => expect(screen.getByText('Sent')).toBeTruthy());
    expect(localStorage.getItem('jamuna.widget.wk_test.conversation')).toBe('c1');
    expect(screen.getByRole('group', { name: 'Was this answer helpful?' })).toBeTruthy();
  });

  it('takes versions with gaps (staff-only notes) and resumes exactly after the last version it saw', async () => {
    FakeWs.staffOnly = 2;
    render(<Widget config={config} />);
    fireEvent.click(screen.getByRole('button', { name: 'Open chat' }));
    await waitFor(() => expect(screen.getByPlaceholderText('Write a message…')).toBeTruthy());
    const box = screen.getByLabelText('Your message');
    fireEvent.change(box, { target: { value: 'When will my card arrive?' } });
    await act(async () => {
      fireEvent.keyDown(box, { key: 'Enter' });
    });
    // The message is version 2; versions 3 and 4 were staff-only; the answer is version 5.
    await screen.findByText('Within 5 working days.');
    expect(screen.getAllByText('When will my card arrive?')).toHaveLength(1);
    const first = FakeWs.all[0]!;
    await act(async () => {
      first.readyState = 3;
      first.onclose?.({ code: 1012 });
    });
    await waitFor(() => expect(FakeWs.all[1]?.sent.some((f) => f.type === 'subscribe')).toBe(true), { timeout: 10_000 });
    expect(FakeWs.all[1]!.sent.filter((f) => f.type === 'subscribe')).toEqual([{ type: 'subscribe', conversation_id: 'c1', after_version: 5 }]);
    expect(screen.getAllByText('Within 5 working days.')).toHaveLength(1);
  });
});
