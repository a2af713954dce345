import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';

const api = vi.hoisted(() => ({ request: vi.fn() }));
vi.mock('../client', async (importOriginal) => ({ ...(await importOriginal<object>()), api }));

import { Webhooks } from './Webhooks';

const TYPES = ['ConversationStarted', 'MessagePosted', 'HandoffRequested'];
const HOOK = { id: 'wh0123456789abcdef0123456789abcdef', url: 'https://hooks.example.com/jamuna', event_types: ['HandoffRequested', 'MessagePosted'] };

describe('the webhooks page', () => {
  afterEach(() => {
    cleanup();
    api.request.mockReset();
  });

  it('registers a webhook for the chosen events, shows its secret once, and lists deliveries with failures', async () => {
    let registered = false;
    api.request.mockImplementation((method: string, path: string) => {
      if (method === 'GET' && path === '/api/v1/webhooks') {
        return Promise.resolve({ items: registered ? [HOOK] : [], event_types: TYPES, max_webhooks: 10 });
      }
      if (method === 'POST' && path === '/api/v1/webhooks') {
        registered = true;
        return Promise.resolve({ ...HOOK, secret: 'whsec_shown_once_0123456789' });
      }
      if (method === 'GET' && path.endsWith('/deliveries')) {
        return Promise.resolve({
          items: [
            { delivery_id: 'dlv_2', event_id: 'e2', event_type: 'MessagePosted', status: 'failed', attempts: 6, response_code: 500, last_error: 'the receiver answered 500', recorded_at: new Date().toISOString() },
            { delivery_id: 'dlv_1', event_id: 'e1', event_type: 'MessagePosted', status: 'delivered', attempts: 2, response_code: 200, last_error: null, recorded_at: new Date().toISOString() },
          ],
        });
      }
      return Promise.reject(new Error(`unexpected ${method} ${path}`));
    });
    render(<Webhooks />);
    await screen.findByLabelText(/HandoffRequested/);
    fireEvent.change(screen.getByLabelText(/Endpoint URL/), { target: { value: ' https://hooks.example.com/jamuna ' } });
    fireEvent.click(screen.getByLabelText(/HandoffRequested/));
    fireEvent.click(screen.getByRole('button', { name: 'Register' }));

    await waitFor(() => expect(screen.getByTestId('webhook-secret').textContent).toBe('whsec_shown_once_0123456789'));
    expect(api.request).toHaveBeenCalledWith('POST', '/api/v1/webhooks', {
      body: { url: 'https://hooks.example.com/jamuna', event_types: ['MessagePosted', 'HandoffRequested'] },
    });
    await waitFor(() => expect(screen.getByTestId('delivery-summary').textContent).toBe('1 delivered, 1 failed'));
    const rows = screen.getByTestId('deliveries').querySelectorAll('tbody tr');
    expect([...rows].map((r) => r.getAttribute('data-status'))).toEqual(['failed', 'delivered']);
    expect(rows[0]?.textContent).toContain('the receiver answered 500');

    fireEvent.click(screen.getByRole('button', { name: 'Done' }));
    expect(screen.queryByTestId('webhook-secret')).toBeNull();
  });

  it('shows the server’s refusal of a URL', async () => {
    api.request.mockImplementation((method: string) =>
      method === 'GET'
        ? Promise.resolve({ items: [], event_types: TYPES, max_webhooks: 10 })
        : Promise.reject(new Error('a webhook may not point at a loopback, private or link-local address')),
    );
    render(<Webhooks />);
    await screen.findByLabelText(/MessagePosted/);
    fireEvent.change(screen.getByLabelText(/Endpoint URL/), { target: { value: 'https://169.254.169.254/' } });
    fireEvent.click(screen.getByRole('button', { name: 'Register' }));
    expect((await screen.findByRole('alert')).textContent).toMatch(/link-local/);
  });
});
