import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';

const kb = vi.hoisted(() => ({
  gaps: vi.fn(),
  addExample: vi.fn(),
  model: vi.fn(),
  train: vi.fn(),
}));
vi.mock('../client', () => ({ kb, api: {} }));

import { Gaps, titleFrom } from './Gaps';

const example = (question: string, agent_reply: string | null) => ({
  conversation_id: 'c1',
  question,
  bot_answer: null,
  agent_reply,
  reason: 'low_confidence',
  at: '2026-12-04T10:00:00Z',
});

const GROUPS = {
  groups: [
    { id: 'g-rare', count: 1, reasons: { low_confidence: 1 }, question: 'Do you have a branch in Paris?', last_at: '2026-12-04T10:00:00Z', examples: [example('Do you have a branch in Paris?', null)] },
    {
      id: 'g-often',
      count: 3,
      reasons: { low_confidence: 1, repeated_failure: 1, negative_feedback: 1 },
      question: 'Can I pay with my smartwatch?',
      last_at: '2026-12-04T10:00:00Z',
      examples: [example('Can I pay with my smartwatch?', 'Yes, with Apple Pay or Google Pay on the watch.')],
    },
  ],
};

const model = (state: string) => ({ examples: 16, intents: ['card_arrival', 'wearables'], state, requested_at: null, trained: null });

describe('the gaps tab', () => {
  afterEach(() => {
    cleanup();
    vi.useRealTimers();
    Object.values(kb).forEach((f) => f.mockReset());
  });

  it('lists groups most frequent first with their count, reasons and the agent reply', async () => {
    kb.gaps.mockResolvedValue(GROUPS);
    kb.model.mockResolvedValue(model('trained'));
    render(<Gaps onMakeArticle={() => {}} />);
    const groups = await screen.findAllByRole('article');
    expect(groups.map((g) => g.getAttribute('aria-label'))).toEqual(['Can I pay with my smartwatch?', 'Do you have a branch in Paris?']);
    expect(within(groups[0]!).getByText('3×')).toBeTruthy();
    expect(within(groups[0]!).getByText(/not sure 1 · failed twice 1 · 👎 1/)).toBeTruthy();
    expect(within(groups[0]!).getByText('Yes, with Apple Pay or Google Pay on the watch.')).toBeTruthy();
    // No agent reply, no article to make from it.
    expect(within(groups[1]!).queryByRole('button', { name: 'Make an article from this reply' })).toBeNull();
  });

  it('opens the article editor prefilled from the question and the agent reply', async () => {
    kb.gaps.mockResolvedValue(GROUPS);
    kb.model.mockResolvedValue(model('trained'));
    const make = vi.fn();
    render(<Gaps onMakeArticle={make} />);
    fireEvent.click(await screen.findByRole('button', { name: 'Make an article from this reply' }));
    expect(make).toHaveBeenCalledWith('Can I pay with my smartwatch?', 'Yes, with Apple Pay or Google Pay on the watch.');
  });

  it('adds the question as an example of the chosen intent and follows the training until it is done', async () => {
    kb.gaps.mockResolvedValue(GROUPS);
    kb.model.mockResolvedValueOnce(model('stale')).mockResolvedValueOnce(model('training')).mockResolvedValueOnce(model('training')).mockResolvedValue(model('trained'));
    kb.addExample.mockResolvedValue({ added: true, training: true });
    render(<Gaps onMakeArticle={() => {}} />);
    const group = (await screen.findAllByRole('article'))[0]!;
    await waitFor(() => expect(within(group).getByRole('combobox')).toBeTruthy());
    fireEvent.change(within(group).getByRole('combobox'), { target: { value: 'wearables' } });
    fireEvent.click(within(group).getByRole('button', { name: 'Add as example of' }));
    await waitFor(() => expect(kb.addExample).toHaveBeenCalledWith('Can I pay with my smartwatch?', 'wearables'));
    await waitFor(() => expect(screen.getByTestId('training-status').textContent).toBe('Retraining the bot…'));
    await waitFor(() => expect(screen.getByTestId('training-status').textContent).toMatch(/^The bot has learnt it \(trained \d\d:\d\d/), { timeout: 5000 });
    // Polled while training, and no more once trained.
    expect(kb.model).toHaveBeenCalledTimes(4);
  });

  it('labels a question as one to hand to a person, and keeps the reserved intent out of the intents to choose', async () => {
    kb.gaps.mockResolvedValue(GROUPS);
    const withOos = (state: string) => ({ ...model(state), intents: ['card_arrival', 'out_of_scope', 'wearables'] });
    kb.model.mockResolvedValueOnce(withOos('trained')).mockResolvedValueOnce(withOos('training')).mockResolvedValue(withOos('trained'));
    kb.addExample.mockResolvedValue({ added: true, training: true });
    render(<Gaps onMakeArticle={() => {}} />);
    const group = (await screen.findAllByRole('article'))[0]!;
    await waitFor(() => expect(within(group).getByRole('combobox')).toBeTruthy());
    const options = within(group).getAllByRole('option').map((o) => o.getAttribute('value'));
    expect(options).toEqual(['card_arrival', 'wearables']);
    fireEvent.click(within(group).getByRole('button', { name: 'Always hand these to a person' }));
    await waitFor(() => expect(kb.addExample).toHaveBeenCalledWith('Can I pay with my smartwatch?', 'out_of_scope'));
    await waitFor(() => expect(screen.getByTestId('handoff-note').textContent).toBe('The bot will hand questions like this to a person once it has retrained.'));
    await waitFor(() => expect(screen.getByTestId('training-status').textContent).toBe('Retraining the bot…'));
    await waitFor(() => expect(screen.getByTestId('training-status').textContent).toMatch(/^The bot has learnt it/), { timeout: 5000 });
    expect(screen.getByTestId('handoff-note')).toBeTruthy();
  });

  it('offers to train a model behind its examples, and follows the training it asks for', async () => {
    kb.gaps.mockResolvedValue({ groups: [] });
    kb.model.mockResolvedValueOnce(model('stale')).mockResolvedValue(model('trained'));
    kb.train.mockResolvedValue(model('training'));
    render(<Gaps onMakeArticle={() => {}} />);
    await waitFor(() => expect(screen.getByTestId('training-status').textContent).toBe('The bot has not learnt your latest examples yet.'));
    fireEvent.click(screen.getByRole('button', { name: 'Train now' }));
    await waitFor(() => expect(kb.train).toHaveBeenCalledTimes(1));
    await waitFor(() => expect(screen.getByTestId('training-status').textContent).toBe('Retraining the bot…'));
    expect(screen.queryByRole('button', { name: 'Train now' })).toBeNull();
    await waitFor(() => expect(screen.getByTestId('training-status').textContent).toMatch(/^The bot has learnt it/), { timeout: 5000 });
  });

  it('says why a training failed and offers to train again', async () => {
    kb.gaps.mockResolvedValue({ groups: [] });
    kb.model.mockResolvedValue({ ...model('failed'), failure: { reason: 'the encoder failed: out of memory', failed_at: '2026-12-05T10:00:00Z' } });
    kb.train.mockResolvedValue(model('training'));
    render(<Gaps onMakeArticle={() => {}} />);
    await waitFor(() => expect(screen.getByTestId('training-status').textContent).toBe('Training failed: the encoder failed: out of memory'));
    fireEvent.click(screen.getByRole('button', { name: 'Train again' }));
    await waitFor(() => expect(kb.train).toHaveBeenCalledTimes(1));
    await waitFor(() => expect(screen.getByTestId('training-status').textContent).toBe('Retraining the bot…'));
  });

  it('says nothing of a trained model it did not see train', async () => {
    kb.gaps.mockResolvedValue({ groups: [] });
    kb.model.mockResolvedValue(model('trained'));
    render(<Gaps onMakeArticle={() => {}} />);
    expect(await screen.findByText(/No gaps/)).toBeTruthy();
    await waitFor(() => expect(kb.model).toHaveBeenCalled());
    expect(screen.queryByTestId('training-status')).toBeNull();
    expect(screen.queryByRole('button', { name: /Train/ })).toBeNull();
  });

  it('says so when there are no gaps, and when the server has no gaps report', async () => {
    kb.gaps.mockResolvedValue({ groups: [] });
    kb.model.mockResolvedValue(model('trained'));
    render(<Gaps onMakeArticle={() => {}} />);
    expect(await screen.findByText(/No gaps/)).toBeTruthy();
    cleanup();
    const { ApiError } = await import('@jamuna/protocol');
    kb.gaps.mockRejectedValue(new ApiError(404, 'not_found', 'Not found'));
    render(<Gaps onMakeArticle={() => {}} />);
    expect((await screen.findByRole('alert')).textContent).toMatch(/not available on this server yet/);
  });

  it('makes a one-line title of at most 200 characters', () => {
    expect(titleFrom('  Can I\n pay  with my watch? ')).toBe('Can I pay with my watch?');
    expect(titleFrom('x'.repeat(500))).toHaveLength(200);
  });
});
