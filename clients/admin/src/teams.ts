/** Teams of agents, a conversation's team, unassign: `/api/v1/teams` and friends. */
import { api } from './client';

/** One team as `GET /api/v1/teams` lists it. */
export interface Team {
  id: string;
  name: string;
  /** The members' user ids. */
  members: string[];
  /** Its conversations waiting for a human (pending, nobody assigned). */
  waiting: number;
}

export interface TeamList {
  teams: Team[];
  /** Conversations waiting for a human that are given to no team. */
  waiting_without_team: number;
}

const path = (...parts: string[]): string => '/api/v1/teams' + parts.map((p) => '/' + encodeURIComponent(p)).join('');

export const teams = {
  list: (): Promise<TeamList> => api.request('GET', path()),
  create: (name: string): Promise<{ id: string }> => api.request('POST', path(), { body: { name } }),
  rename: (id: string, name: string): Promise<unknown> => api.request('PATCH', path(id), { body: { name } }),
  remove: (id: string): Promise<unknown> => api.request('DELETE', path(id)),
  addMember: (id: string, user: string): Promise<unknown> => api.request('PUT', path(id, 'members', user)),
  removeMember: (id: string, user: string): Promise<unknown> => api.request('DELETE', path(id, 'members', user)),
  /** Gives a conversation to a team (null: to none). */
  assign: (conversation: string, team: string | null): Promise<unknown> =>
    api.request('POST', `/api/v1/conversations/${encodeURIComponent(conversation)}/team`, { body: { team_id: team } }),
  /** Nobody has the conversation any more: it waits for a human again. */
  unassign: (conversation: string): Promise<unknown> => api.request('POST', `/api/v1/conversations/${encodeURIComponent(conversation)}/unassign`, { body: {} }),
};
