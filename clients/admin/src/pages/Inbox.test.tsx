import { afterEach, describe, expect, it, vi } from 'vitest';
import { act, cleanup, render, waitFor } from '@testing-library/react';
import type { ContactPanel, ConversationSummary, Me } from '@jamuna/protocol';

type Handler = (payload: unknown) => void;
const handlers = vi.hoisted(() => new Map<string, Set<(payload: unknown) => void>>());
const api = vi.hoisted(() => ({ conversations: vi.fn(), contact: vi.fn(), users: vi.fn(), colleagues: vi.fn(), request: vi.fn() }));
vi.mock('../client', async (importOriginal) => ({
  ...(await importOriginal<object>()),
  api,
  socket: () => ({
    on: (name: string, h: Handler) => {
      const set = handlers.get(name) ?? new Set<Handler>();
      set.add(h);
      handlers.set(name, set);
      return () => set.delete(h);
    },
  }),
}));

import { Inbox } from './Inbox';
import { PeopleProvider } from '../people';
import { loadContact } from '../contact';

const me: Me = { id: 'agent-0001', tenant: 'demo', role: 'agent', name: 'Ana', email: 'ana@demo.example' } as Me;
const id = (n: number): string => `0190b6e2-7c4a-7d1e-9f3a-00000000${String(n).padStart(4, '0')}`;
const summary = (n: number): ConversationSummary => ({
  tenant: 'demo',
  id: `conv-${n}`,
  customer: id(n),
  channel: 'web',
  status: 'open',
  assignee: null,
  human_involved: false,
  created_at: new Date().toISOString(),
  updated_at: new Date().toISOString(),
  resolved_at: null,
  last_message: null,
  message_count: 0,
  csat: null,
  version: 1,
});
const contact = (customer: string, over: Partial<ContactPanel> = {}): ContactPanel => ({
  id: customer,
  name: null,
  email: null,
  external_id: null,
  attributes: {},
  verified: false,
  identified: false,
  erased: false,
  conversations: [],
  ...over,
});

function renderInbox() {
  return render(
    <PeopleProvider me={me}>
      <Inbox view="all" />
    </PeopleProvider>,
  );
}
const rows = (): string[] => [...document.querySelectorAll('.conversations .who')].map((e) => e.textContent ?? '');

describe('the inbox names customers', () => {
  afterEach(() => {
    cleanup();
    handlers.clear();
    for (const f of Object.values(api)) f.mockReset();
  });

  it('by the name an identified customer gave, asking each contact once however often the list refreshes', async () => {
    // Customers 1–4: identified with a name, e-mail only, anonymous, erased; 5: the contact cannot be read.
    const people: Record<string, ContactPanel> = {
      [id(1)]: contact(id(1), { name: 'Ada Lovelace', external_id: 'shop-7', identified: true, verified: true }),
      [id(2)]: contact(id(2), { email: 'grace@shop.example', identified: true }),
      [id(3)]: contact(id(3)),
      [id(4)]: contact(id(4), { name: 'Gone', erased: true }),
    };
    api.contact.mockImplementation((c: string) => (people[c] ? Promise.resolve(people[c]) : Promise.reject(new Error('forbidden'))));
    api.conversations.mockResolvedValue({ items: [1, 2, 3, 4, 5, 1].map((n, i) => ({ ...summary(n), id: `conv-${i}` })) });
    api.users.mockResolvedValue({ items: [] });
    api.request.mockResolvedValue({ teams: [], waiting_without_team: 0 });
    renderInbox();

    await waitFor(() => expect(rows()).toEqual(['Ada Lovelace', 'grace@shop.example', 'Visitor 000003', 'Erased user', 'Visitor 000005', 'Ada Lovelace']));

    // Live events refresh the list (debounced): new renders, new item objects, no new contact requests.
    const asked = api.contact.mock.calls.length;
    expect(new Set(api.contact.mock.calls.map(([c]) => c as string)).size).toBe(asked);
    const loads = api.conversations.mock.calls.length;
    await act(async () => {
      for (const h of handlers.get('status') ?? []) h('open');
      await new Promise((r) => setTimeout(r, 300));
    });
    await waitFor(() => expect(api.conversations.mock.calls.length).toBeGreaterThan(loads));
    expect(rows()[0]).toBe('Ada Lovelace');
    // Customer 5's failure is not cached, but nothing asks again until the set of customers changes.
    expect(api.contact.mock.calls.length).toBe(asked);
    expect(api.contact.mock.calls.filter(([c]) => c === id(1))).toHaveLength(1);
  });

  it('asks a few contacts at a time, and a fresher load (the contact panel) renames the row', async () => {
    const resolvers: (() => void)[] = [];
    let inFlight = 0;
    let most = 0;
    api.contact.mockImplementation(
      (c: string) =>
        new Promise<ContactPanel>((resolve) => {
          inFlight++;
          most = Math.max(most, inFlight);
          resolvers.push(() => {
            inFlight--;
            resolve(contact(c, { name: `Customer ${c.slice(-2)}` }));
          });
        }),
    );
    api.conversations.mockResolvedValue({ items: Array.from({ length: 12 }, (_, i) => summary(100 + i)) });
    api.users.mockResolvedValue({ items: [] });
    api.request.mockResolvedValue({ teams: [], waiting_without_team: 0 });
    renderInbox();

    await waitFor(() => expect(resolvers.length).toBe(4));
    while (resolvers.length > 0) {
      await act(async () => resolvers.shift()!());
      await act(async () => new Promise((r) => setTimeout(r, 0)));
    }
    await waitFor(() => expect(rows()[11]).toBe('Customer 11'));
    expect(most).toBe(4);
    expect(api.contact).toHaveBeenCalledTimes(12);

    api.contact.mockResolvedValueOnce(contact(id(100), { name: 'Ada (renamed)', identified: true }));
    await act(async () => {
      await loadContact(id(100), true);
    });
    expect(rows()[0]).toBe('Ada (renamed)');
  });
});
