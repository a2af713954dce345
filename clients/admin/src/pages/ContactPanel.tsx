/** The contact panel of the conversation view: who the customer is (name, e-mail, custom
 * attributes, verified or not) and their past conversations. Staff only. */
import { useEffect, useState } from 'react';
import type { ContactPanel as Contact } from '@jamuna/protocol';
import { displayName, loadContact } from '../contact';
import { ago } from '../format';
import { href } from '../router';

export function ContactPanel({ customerId, conversationId }: { customerId: string; conversationId: string }) {
  const [contact, setContact] = useState<Contact | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    setContact(null);
    setError(null);
    loadContact(customerId, true)
      .then((c) => live && setContact(c))
      .catch((e: unknown) => live && setError(e instanceof Error ? e.message : 'Could not load the contact.'));
    return () => {
      live = false;
    };
  }, [customerId]);

  const attributes = Object.entries(contact?.attributes ?? {});
  const past = (contact?.conversations ?? []).filter((c) => c.id !== conversationId);
  return (
    <details className="contact-panel" open data-testid="contact-panel">
      <summary>
        Contact: <strong data-testid="contact-name">{displayName(contact, customerId)}</strong>{' '}
        {contact &&
          (contact.verified ? (
            <span className="badge badge-ok" data-testid="contact-verified">
              verified
            </span>
          ) : (
            <span className="badge muted" data-testid="contact-verified">
              {contact.identified ? 'unverified' : 'anonymous'}
            </span>
          ))}
      </summary>
      {error && <p className="error small">{error}</p>}
      {contact && (
        <div className="contact-body">
          <dl>
            <dt>E-mail</dt>
            <dd data-testid="contact-email">{contact.email ?? '—'}</dd>
            {contact.external_id && (
              <>
                <dt>Id on your site</dt>
                <dd>{contact.external_id}</dd>
              </>
            )}
            {attributes.map(([k, v]) => (
              <div key={k} className="contact-attr" data-testid="contact-attribute">
                <dt>{k}</dt>
                <dd>{v}</dd>
              </div>
            ))}
          </dl>
          <h4>Past conversations</h4>
          {past.length === 0 ? (
            <p className="muted small">None before this one.</p>
          ) : (
            <ul className="contact-past" data-testid="contact-past">
              {past.map((c) => (
                <li key={c.id}>
                  <a href={href('inbox', 'all', c.id)}>{typeof c.last_message?.text === 'string' ? c.last_message.text : '(no messages)'}</a>{' '}
                  <span className="muted small">
                    {c.status} · {ago(c.updated_at)}
                  </span>
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
    </details>
  );
}
