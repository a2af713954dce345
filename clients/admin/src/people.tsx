/**
 * The people a signed-in agent or admin sees: who they are, the tenant's
 * users by id, the agents to assign, and a display name for any user id.
 * The shell provides them ({@link PeopleProvider}); pages read them with
 * {@link usePeople}.
 */
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { ApiError, type Me, type UserItem } from '@jamuna/protocol';
import { api } from './client';
import { shortId } from './format';

export interface People {
  me: Me;
  users: Map<string, UserItem>;
  /** A display name for a user id. */
  name(id: string | null | undefined): string;
  agents: UserItem[];
  reload(): void;
}

const PeopleContext = createContext<People | null>(null);
export function usePeople(): People {
  const p = useContext(PeopleContext);
  if (!p) throw new Error('usePeople outside the signed-in app');
  return p;
}

/** Loads the tenant's users for `me` and provides them to `children`. */
export function PeopleProvider({ me, children }: { me: Me; children: ReactNode }) {
  const [users, setUsers] = useState<UserItem[]>([]);

  const reload = useCallback(() => {
    api
      .users()
      .then((p) => setUsers(p.items))
      .catch(async (e: unknown) => {
        if (!(e instanceof ApiError)) return console.error(e);
        // Only admins list users: an agent gets their colleagues (names, no addresses).
        if (e.status !== 403) return;
        const c = await api.colleagues().catch(() => ({ items: [] }));
        setUsers(c.items.map((u) => ({ ...u, email: null, erased: false, registered_at: null })));
      });
  }, []);
  useEffect(reload, [reload]);

  const people = useMemo<People>(() => {
    const map = new Map(users.map((u) => [u.id, u]));
    return {
      me,
      users: map,
      agents: users.filter((u) => (u.role === 'agent' || u.role === 'admin') && !u.erased),
      reload,
      name(id) {
        if (!id) return 'Nobody';
        if (id === me.id) return me.name ? `${me.name} (you)` : 'You';
        const u = map.get(id);
        if (u?.erased) return 'Erased user';
        return u?.name || u?.email || `Visitor ${shortId(id)}`;
      },
    };
  }, [users, me, reload]);

  return <PeopleContext.Provider value={people}>{children}</PeopleContext.Provider>;
}
