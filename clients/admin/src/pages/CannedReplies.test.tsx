import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { ApiError } from '@jamuna/protocol';

const canned = vi.hoisted(() => ({ list: vi.fn(), add: vi.fn(), change: vi.fn(), remove: vi.fn() }));
vi.mock('../canned', async (importOriginal) => ({ ...(await importOriginal<object>()), canned }));

import { CannedReplies } from './CannedReplies';

const HELLO = { id: 'r1', shortcut: 'hello', text: 'Hello {{customer.name}}!' };

describe('the canned replies section', () => {
  afterEach(() => {
    cleanup();
    vi.restoreAllMocks();
    Object.values(canned).forEach((f) => f.mockReset());
  });

  it('lists the replies and adds one', async () => {
    canned.list.mockResolvedValueOnce({ items: [HELLO] });
    render(<CannedReplies />);
    const list = await screen.findByTestId('canned-list');
    expect(within(list).getByText('/hello', { selector: 'strong' })).toBeTruthy();
    const add = screen.getByRole('button', { name: 'Add reply' });
    expect((add as HTMLButtonElement).disabled).toBe(true);
    fireEvent.change(screen.getByLabelText(/Shortcut/), { target: { value: 'Refund' } });
    expect((screen.getByLabelText(/Shortcut/) as HTMLInputElement).value).toBe('refund');
    fireEvent.change(screen.getByLabelText('Text'), { target: { value: 'Your refund is on its way, {{agent.name}}.' } });
    canned.add.mockResolvedValue({ id: 'r2', shortcut: 'refund', text: 'Your refund is on its way, {{agent.name}}.' });
    canned.list.mockResolvedValueOnce({ items: [HELLO, { id: 'r2', shortcut: 'refund', text: 'Your refund is on its way, {{agent.name}}.' }] });
    fireEvent.click(add);
    await screen.findByText('Added /refund.');
    expect(canned.add).toHaveBeenCalledWith('refund', 'Your refund is on its way, {{agent.name}}.');
    expect(within(screen.getByTestId('canned-list')).getByText('/refund', { selector: 'strong' })).toBeTruthy();
  });

  it('names an unknown placeholder before saving and shows the server’s refusal', async () => {
    canned.list.mockResolvedValue({ items: [HELLO] });
    render(<CannedReplies />);
    await screen.findByTestId('canned-list');
    fireEvent.change(screen.getByLabelText(/Shortcut/), { target: { value: 'typo' } });
    fireEvent.change(screen.getByLabelText('Text'), { target: { value: 'Hi {{customer.nmae}}' } });
    expect(screen.getByRole('alert').textContent).toContain('{{customer.nmae}}');
    expect((screen.getByRole('button', { name: 'Add reply' }) as HTMLButtonElement).disabled).toBe(true);
    fireEvent.change(screen.getByLabelText(/Shortcut/), { target: { value: 'hello' } });
    fireEvent.change(screen.getByLabelText('Text'), { target: { value: 'Hi again' } });
    canned.add.mockRejectedValue(new ApiError(409, 'shortcut_taken', 'the shortcut /hello is taken'));
    fireEvent.click(screen.getByRole('button', { name: 'Add reply' }));
    expect((await screen.findByRole('alert')).textContent).toBe('the shortcut /hello is taken');
  });

  it('edits and removes a reply', async () => {
    canned.list.mockResolvedValue({ items: [HELLO] });
    render(<CannedReplies />);
    await screen.findByTestId('canned-list');
    fireEvent.click(screen.getByRole('button', { name: 'Edit /hello' }));
    expect((screen.getByLabelText('Text') as HTMLTextAreaElement).value).toBe(HELLO.text);
    fireEvent.change(screen.getByLabelText('Text'), { target: { value: 'Hello there!' } });
    canned.change.mockResolvedValue({ ...HELLO, text: 'Hello there!' });
    fireEvent.click(screen.getByRole('button', { name: 'Save reply' }));
    await screen.findByText('Saved /hello.');
    expect(canned.change).toHaveBeenCalledWith('r1', 'hello', 'Hello there!');

    vi.spyOn(window, 'confirm').mockReturnValue(true);
    canned.remove.mockResolvedValue(undefined);
    canned.list.mockResolvedValue({ items: [] });
    fireEvent.click(screen.getByRole('button', { name: 'Remove /hello' }));
    await screen.findByText('Removed /hello.');
    expect(canned.remove).toHaveBeenCalledWith('r1');
    await waitFor(() => expect(screen.getByText('No canned replies yet.')).toBeTruthy());
  });
});
