import { afterEach, describe, expect, it, vi } from 'vitest';
import { act, cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import type { UserItem } from '@jamuna/protocol';

const api = vi.hoisted(() => ({ addNote: vi.fn() }));
vi.mock('../client', async (importOriginal) => ({ ...(await importOriginal<object>()), api }));

import { NoteBox } from './NoteBox';

const agent = (id: string, name: string): UserItem => ({ id, role: 'agent', name, email: `${id}@demo.example`, erased: false, registered_at: null });
const agents = [agent('ana', 'Ana Lopez'), agent('bo', 'Bo Berg'), agent('bea', 'Bea Cruz')];

/** Types `text` as if keyed in: the value and the caret at its end. */
function type(box: HTMLTextAreaElement, text: string): void {
  fireEvent.change(box, { target: { value: text, selectionStart: text.length, selectionEnd: text.length } });
}

describe('the note box', () => {
  afterEach(() => {
    cleanup();
    api.addNote.mockReset();
  });

  it('offers agents after @, moves with ↑ ↓, picks with Enter, closes with Esc, and sends the ids named', async () => {
    api.addNote.mockResolvedValue({ id: 'c1', version: 3, mentions: ['bea'] });
    render(<NoteBox id="c1" agents={agents} onError={() => undefined} />);
    const box = screen.getByLabelText('Private note') as HTMLTextAreaElement;
    type(box, 'ask @b');
    const options = () => screen.getAllByRole('option').map((o) => [o.textContent, o.getAttribute('aria-selected')]);
    expect(options()).toEqual([
      [expect.stringContaining('Bo Berg'), 'true'],
      [expect.stringContaining('Bea Cruz'), 'false'],
    ]);
    fireEvent.keyDown(box, { key: 'ArrowDown' });
    expect(options()[1]?.[1]).toBe('true');
    fireEvent.keyDown(box, { key: 'ArrowDown' });
    expect(options()[0]?.[1]).toBe('true'); // wraps around
    fireEvent.keyDown(box, { key: 'ArrowUp' });
    expect(options()[1]?.[1]).toBe('true');
    fireEvent.keyDown(box, { key: 'Escape' });
    expect(screen.queryByRole('listbox')).toBeNull();
    expect(api.addNote).not.toHaveBeenCalled();

    type(box, 'ask @bea');
    expect(options()).toEqual([[expect.stringContaining('Bea Cruz'), 'true']]);
    fireEvent.keyDown(box, { key: 'Enter' });
    expect(box.value).toBe('ask @Bea Cruz ');
    expect(screen.queryByRole('listbox')).toBeNull();
    expect(api.addNote).not.toHaveBeenCalled();

    type(box, 'ask @Bea Cruz about the refund');
    await act(async () => {
      fireEvent.keyDown(box, { key: 'Enter' });
    });
    expect(api.addNote).toHaveBeenCalledWith('c1', 'ask @Bea Cruz about the refund', ['bea']);
    await waitFor(() => expect(box.value).toBe(''));
  });

  it('keeps the text and says why when the note is refused', async () => {
    api.addNote.mockRejectedValue(new Error('a note names at most 20 colleagues'));
    const onError = vi.fn();
    render(<NoteBox id="c1" agents={agents} onError={onError} />);
    const box = screen.getByLabelText('Private note') as HTMLTextAreaElement;
    type(box, 'hello team');
    await act(async () => {
      fireEvent.click(screen.getByRole('button', { name: 'Add note' }));
    });
    expect(onError).toHaveBeenCalledWith('a note names at most 20 colleagues');
    expect(box.value).toBe('hello team');
  });
});
