/**
 * Who a customer is, as the dashboard shows them: the contact panel's data
 * (`GET /api/v1/customers/{id}`, staff only) and the customer's display name,
 * which canned replies fill `{{customer.name}}` with.
 */
import type { ContactPanel } from '@jamuna/protocol';
import { api } from './client';
import { shortId } from './format';

const cache = new Map<string, Promise<ContactPanel>>();

/** The contact panel of a customer (cached for the session; `fresh` asks again). */
export function loadContact(customerId: string, fresh = false): Promise<ContactPanel> {
  let p = fresh ? undefined : cache.get(customerId);
  if (!p) {
    p = api.contact(customerId);
    cache.set(customerId, p);
    p.catch(() => cache.delete(customerId));
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
