import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';

const api = vi.hoisted(() => ({
  tenant: vi.fn(),
  request: vi.fn(),
  updateSettings: vi.fn(),
}));
const calls = vi.hoisted(() => ({ kbModel: vi.fn(), saveSettings: vi.fn() }));
// The page's pure helpers (settingsOf, pointFor) are the real ones; the calls are mocked.
vi.mock('../client', async (importOriginal) => ({ ...(await importOriginal<object>()), api, ...calls }));
// The canned replies section has its own tests (CannedReplies.test.tsx).
vi.mock('./CannedReplies', () => ({ CannedReplies: () => null }));

import { Settings } from './Settings';

const OLD = 'wk_old_0123456789abcdefghijkl';
const NEW = 'wk_new_0123456789abcdefghijkl';

describe('the settings page', () => {
  beforeEach(() => {
    calls.kbModel.mockResolvedValue({ examples: 0, intents: [], state: 'untrained', trained: null });
  });
  afterEach(() => {
    cleanup();
    vi.restoreAllMocks();
    api.tenant.mockReset();
    api.request.mockReset();
    calls.kbModel.mockReset();
    calls.saveSettings.mockReset();
  });

  it('says what a handoff setting implies on the tenant’s own data, and saves it with the other settings', async () => {
    api.tenant.mockResolvedValue({
      id: 'demo',
      name: 'Demo',
      widget_key: OLD,
      settings: { allowed_origins: ['https://shop.example.com'], self_signup: false, handoff_retention: 0.95 },
    });
    const point = (threshold: number, in_scope_retention: number, in_scope_accuracy: number, oos_recall: number) => ({
      threshold,
      in_scope_retention,
      in_scope_accuracy,
      oos_recall,
    });
    calls.kbModel.mockResolvedValue({
      examples: 900,
      intents: ['card_arrival', 'lost_card'],
      state: 'trained',
      trained: {
        threshold: 0.4,
        retention: 0.95,
        // At 0.95 the highest threshold keeping ≥ 95% is 0.4 (0.5 keeps only 93%).
        operating_points: [point(0.2, 0.99, 0.9, 0.5), point(0.4, 0.95, 0.874, 0.72), point(0.5, 0.93, 0.86, 0.8), point(0.7, 0.85, 0.8, 0.9)],
      },
    });
    calls.saveSettings.mockResolvedValue({ version: 4 });
    render(<Settings />);
    const implication = () => screen.getByTestId('handoff-implication').textContent ?? '';
    await waitFor(() => expect(implication()).toMatch(/keeps 95% of answerable questions, 92% of them answered right; hands off 72%/));
    expect(screen.getByRole('button', { name: 'Balanced (95%)' }).getAttribute('aria-pressed')).toBe('true');

    fireEvent.click(screen.getByRole('button', { name: 'Hands off readily (85%)' }));
    expect(screen.getByTestId('handoff-retention').textContent).toBe('85%');
    expect(implication()).toMatch(/keeps 85% of answerable questions, 94.1% of them answered right; hands off 90%/);
    fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(calls.saveSettings).toHaveBeenCalledTimes(1));
    expect(calls.saveSettings).toHaveBeenCalledWith({ allowed_origins: ['https://shop.example.com'], self_signup: false, handoff_retention: 0.85, prechat: 'off' });
    await waitFor(() => expect(screen.getByText(/answers 85% of the questions it could answer/)).toBeTruthy());
  });

  it('asks to train the bot first when there is no trained model, and the security form keeps the handoff setting', async () => {
    api.tenant.mockResolvedValue({
      id: 'demo',
      name: 'Demo',
      widget_key: OLD,
      settings: { allowed_origins: [], self_signup: true, handoff_retention: 0.9 },
    });
    calls.kbModel.mockResolvedValue({ examples: 0, intents: [], state: 'untrained', trained: null });
    calls.saveSettings.mockResolvedValue({ version: 2 });
    render(<Settings />);
    await waitFor(() => expect(screen.getByTestId('handoff-implication').textContent).toMatch(/Train the bot first/));
    expect(screen.getByTestId('handoff-retention').textContent).toBe('90%');
    fireEvent.click(screen.getByRole('button', { name: 'Save settings' }));
    await waitFor(() => expect(calls.saveSettings).toHaveBeenCalledWith({ allowed_origins: [], self_signup: true, handoff_retention: 0.9, prechat: 'off' }));
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
