/**
 * Who a customer is, as the dashboard shows them: the contact panel's data
 * (`GET /api/v1/customers/{id}`, staff only) and the customer's display name,
 * which canned replies fill `{{customer.name}}` with, and the inbox and the
 * conversation header show.
 */
import { useEffect, useState } from 'react';
import type { ContactPanel } from '@jamuna/protocol';
import { api } from './client';
import { shortId } from './format';

const cache = new Map<string, Promise<ContactPanel>>();
/** Told of every contact loaded, so names on screen follow a fresher load (the contact panel's). */
const listeners = new Set<(customerId: string, contact: ContactPanel) => void>();

/** At most this many contact requests at once (an inbox page names up to 50 customers). */
const MAX_IN_FLIGHT = 4;
let inFlight = 0;
const waiting: (() => void)[] = [];

async function limited<T>(f: () => Promise<T>): Promise<T> {
  while (inFlight >= MAX_IN_FLIGHT) await new Promise<void>((go) => waiting.push(go));
  inFlight++;
  try {
    return await f();
  } finally {
    inFlight--;
    waiting.shift()?.();
  }
}

/** The contact panel of a customer (cached for the session; `fresh` asks again). */
export function loadContact(customerId: string, fresh = false): Promise<ContactPanel> {
  let p = fresh ? undefined : cache.get(customerId);
  if (!p) {
    const asked = limited(() => api.contact(customerId));
    p = asked;
    cache.set(customerId, asked);
    asked.then(
      (c) => {
        for (const l of listeners) l(customerId, c);
      },
      () => {
        if (cache.get(customerId) === asked) cache.delete(customerId);
      },
    );
  }
  return p;
}

/** A customer's display name: the name they gave (verified or in the pre-chat form, else their
 * account's), then their e-mail address, then "Visitor" and a short id. */
export function displayName(contact: Pick<ContactPanel, 'id' | 'name' | 'email' | 'erased'> | null, customerId: string): string {
  if (contact?.erased) return 'Erased user';
  return contact?.name?.trim() || contact?.email || `Visitor ${shortId(customerId)}`;
}

/** The display name of a customer by id, for `{{customer.name}}` in canned replies. */
export async function customerName(customerId: string): Promise<string> {
  const contact = await loadContact(customerId).catch(() => null);
  return displayName(contact, customerId);
}

/**
 * The display names of these customers (by id) once their contacts are loaded:
 * each is asked once per session, whatever the renders and live refreshes of
 * the list, a few at a time; a customer whose contact cannot be loaded is
 * simply absent (show `people.name(id)` instead).
 */
export function useCustomerNames(customerIds: readonly string[]): ReadonlyMap<string, string> {
  const key = [...new Set(customerIds)].sort().join(',');
  const [names, setNames] = useState<ReadonlyMap<string, string>>(() => new Map());
  useEffect(() => {
    const wanted = new Set(key ? key.split(',') : []);
    let live = true;
    const put = (id: string, c: ContactPanel): void => {
      if (!live || !wanted.has(id)) return;
      const name = displayName(c, id);
      setNames((old) => (old.get(id) === name ? old : new Map(old).set(id, name)));
    };
    listeners.add(put);
    for (const id of wanted) loadContact(id).then((c) => put(id, c), () => undefined);
    return () => {
      live = false;
      listeners.delete(put);
    };
  }, [key]);
  return names;
}
