import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';

const api = vi.hoisted(() => ({
  tenant: vi.fn(),
  request: vi.fn(),
  updateSettings: vi.fn(),
}));
vi.mock('../client', () => ({ api }));

import { Settings } from './Settings';

const OLD = 'wk_old_0123456789abcdefghijkl';
const NEW = 'wk_new_0123456789abcdefghijkl';

describe('the settings page', () => {
  afterEach(() => {
    cleanup();
    vi.restoreAllMocks();
    api.tenant.mockReset();
    api.request.mockReset();
  });

  it('rotates the widget key after a confirmation that says the old key stops at once, and shows the new snippet', async () => {
    api.tenant.mockResolvedValue({ id: 'demo', name: 'Demo', widget_key: OLD, settings: { allowed_origins: [], self_signup: true } });
    api.request.mockResolvedValue({ widget_key: NEW, version: 3 });
    const confirm = vi.spyOn(window, 'confirm').mockReturnValue(true);
    render(<Settings />);
    await waitFor(() => expect(screen.getByTestId('widget-key').textContent).toBe(OLD));

    fireEvent.click(screen.getByRole('button', { name: 'Rotate key' }));
    expect(confirm.mock.calls[0]?.[0]).toMatch(/stops working at once/);
    expect(confirm.mock.calls[0]?.[0]).toMatch(/data-tenant-key/);
    await waitFor(() => expect(screen.getByTestId('widget-key').textContent).toBe(NEW));
    expect(api.request).toHaveBeenCalledWith('POST', '/api/v1/tenant/widget-key', { body: {} });
    expect(screen.getByText(new RegExp(`data-tenant-key="${NEW}"`))).toBeTruthy();
    expect(screen.getByText(/old key no longer works/)).toBeTruthy();
  });

  it('keeps the key when the confirmation is declined', async () => {
    api.tenant.mockResolvedValue({ id: 'demo', name: 'Demo', widget_key: OLD, settings: { allowed_origins: [], self_signup: true } });
    vi.spyOn(window, 'confirm').mockReturnValue(false);
    render(<Settings />);
    await waitFor(() => expect(screen.getByTestId('widget-key').textContent).toBe(OLD));
    fireEvent.click(screen.getByRole('button', { name: 'Rotate key' }));
    expect(api.request).not.toHaveBeenCalled();
    expect(screen.getByTestId('widget-key').textContent).toBe(OLD);
  });
});
