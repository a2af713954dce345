import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';

const kb = vi.hoisted(() => ({
  examples: vi.fn(),
  removeExample: vi.fn(),
}));
vi.mock('../client', () => ({ kb, api: {} }));

import { Examples, PAGE } from './Examples';

const INTENTS = { card_arrival: 2, lost_card: 1, out_of_scope: 1 };
const ALL = {
  items: [
    { text: 'my card has not come', intent: 'card_arrival' },
    { text: 'where is my card', intent: 'card_arrival' },
    { text: 'I lost my card', intent: 'lost_card' },
    { text: 'Can I get a mortgage?', intent: 'out_of_scope' },
  ],
  total: 4,
  intents: INTENTS,
};

/** The rows of the list, as `text | intent`. */
const rows = (): string[] =>
  screen
    .getAllByRole('row')
    .slice(1)
    .map((r) => within(r).getAllByRole('cell').slice(0, 2).map((c) => c.textContent).join(' | '));

describe('the examples tab', () => {
  afterEach(() => {
    cleanup();
    vi.restoreAllMocks();
    Object.values(kb).forEach((f) => f.mockReset());
  });

  it('lists the examples with their intent, the reserved one as hand to a person', async () => {
    kb.examples.mockResolvedValue(ALL);
    render(<Examples />);
    await waitFor(() => expect(rows()).toHaveLength(4));
    expect(rows()).toEqual(['my card has not come | card_arrival', 'where is my card | card_arrival', 'I lost my card | lost_card', 'Can I get a mortgage? | hand to a person']);
    expect(kb.examples).toHaveBeenCalledWith({ intent: undefined, q: undefined, offset: 0, limit: PAGE });
    const options = within(screen.getByRole('combobox', { name: 'Intent' }))
      .getAllByRole('option')
      .map((o) => o.textContent);
    expect(options).toEqual(['All intents', 'card_arrival (2)', 'lost_card (1)', 'hand to a person (1)']);
    expect(screen.getByTestId('examples-range').textContent).toBe('1–4 of 4');
  });

  it('filters by intent and by text', async () => {
    kb.examples.mockResolvedValue(ALL);
    render(<Examples />);
    await waitFor(() => expect(rows()).toHaveLength(4));
    kb.examples.mockResolvedValue({ items: [ALL.items[3]], total: 1, intents: INTENTS });
    fireEvent.change(screen.getByRole('combobox', { name: 'Intent' }), { target: { value: 'out_of_scope' } });
    await waitFor(() => expect(kb.examples).toHaveBeenLastCalledWith({ intent: 'out_of_scope', q: undefined, offset: 0, limit: PAGE }));
    await waitFor(() => expect(rows()).toEqual(['Can I get a mortgage? | hand to a person']));
    kb.examples.mockResolvedValue({ items: [], total: 0, intents: INTENTS });
    const calls = kb.examples.mock.calls.length;
    // Typed quickly: one search, once typing pauses.
    const search = screen.getByRole('searchbox', { name: 'Search examples' });
    for (const value of ['c', 'ca', 'car', 'card']) fireEvent.change(search, { target: { value } });
    await waitFor(() => expect(kb.examples).toHaveBeenLastCalledWith({ intent: 'out_of_scope', q: 'card', offset: 0, limit: PAGE }));
    expect(kb.examples.mock.calls.length).toBe(calls + 1);
    expect(await screen.findByText('No examples match.')).toBeTruthy();
  });

  it('removes an example after confirming, then reloads the list', async () => {
    kb.examples.mockResolvedValueOnce(ALL).mockResolvedValue({ ...ALL, items: ALL.items.slice(1), total: 3, intents: { ...INTENTS, card_arrival: 1 } });
    kb.removeExample.mockResolvedValue(undefined);
    const confirm = vi.spyOn(window, 'confirm').mockReturnValueOnce(false).mockReturnValueOnce(true);
    render(<Examples />);
    const remove = await screen.findByRole('button', { name: 'Remove my card has not come' });
    fireEvent.click(remove);
    expect(confirm).toHaveBeenCalledTimes(1);
    expect(kb.removeExample).not.toHaveBeenCalled();
    fireEvent.click(remove);
    await waitFor(() => expect(kb.removeExample).toHaveBeenCalledWith('my card has not come', 'card_arrival'));
    await waitFor(() => expect(rows()).toHaveLength(3));
    expect(kb.examples).toHaveBeenCalledTimes(2);
    expect(screen.getByText('Example removed. The bot retrains in the background.')).toBeTruthy();
  });

  it('pages 50 at a time with Previous and Next', async () => {
    const many = (from: number) => Array.from({ length: PAGE }, (_, i) => ({ text: `question ${from + i}`, intent: 'card_arrival' }));
    kb.examples.mockResolvedValueOnce({ items: many(0), total: 120, intents: { card_arrival: 120 } }).mockResolvedValue({ items: many(50), total: 120, intents: { card_arrival: 120 } });
    render(<Examples />);
    await waitFor(() => expect(screen.getByTestId('examples-range').textContent).toBe('1–50 of 120'));
    expect((screen.getByRole('button', { name: 'Previous' }) as HTMLButtonElement).disabled).toBe(true);
    fireEvent.click(screen.getByRole('button', { name: 'Next' }));
    await waitFor(() => expect(kb.examples).toHaveBeenLastCalledWith({ intent: undefined, q: undefined, offset: 50, limit: PAGE }));
    await waitFor(() => expect(screen.getByTestId('examples-range').textContent).toBe('51–100 of 120'));
    fireEvent.click(screen.getByRole('button', { name: 'Previous' }));
    await waitFor(() => expect(kb.examples).toHaveBeenLastCalledWith({ intent: undefined, q: undefined, offset: 0, limit: PAGE }));
  });
});
