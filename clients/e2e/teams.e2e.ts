import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { adminApi, adminLogin, openWidget, screenshot, type Server, setUp, tearDown } from './harness';

let server: Server;
let browser: Browser;

beforeEach(async () => {
  ({ server, browser } = await setUp());
});
afterEach((ctx) => tearDown(ctx, server, browser));

describe('teams and the router, in a real browser', () => {
  it('an admin creates a team with an agent; a customer asks for a human; the agent, online in the dashboard, gets the conversation without clicking', async () => {
    const call = await adminApi(server);
    const agentEmail = 'sam@demo.example';
    const agentPassword = 'agent-password-1';
    const sam = await call<{ id: string }>('POST', '/api/v1/users', { email: agentEmail, password: agentPassword, name: 'Sam Agent', role: 'agent' });

    // The admin creates the team and adds Sam, on the Teams page.
    const adminContext = await browser.newContext({ viewport: { width: 1400, height: 860 } });
    const admin = await adminLogin(adminContext, server, '#/teams');
    await admin.getByLabel('Team name').fill('Cards');
    await admin.getByRole('button', { name: 'Create team' }).click();
    const team = admin.getByRole('region', { name: 'Team Cards' });
    await team.waitFor();
    await team.getByLabel('Add a member to Cards').selectOption(sam.id);
    await team.getByRole('list', { name: 'Members of Cards' }).getByText('Sam Agent').waitFor();
    await screenshot(admin, 'teams-page');
    // The admin leaves: Sam is the one member of staff online.
    await adminContext.close();

    // Sam signs in to the dashboard and waits in "Mine".
    const agentContext = await browser.newContext({ viewport: { width: 1400, height: 860 } });
    const agent = await agentContext.newPage();
    await agent.goto(`${server.url}/admin/#/inbox/mine`);
    await agent.getByLabel('Workspace').fill('demo');
    await agent.getByLabel('E-mail').fill(agentEmail);
    await agent.getByLabel('Password').fill(agentPassword);
    await agent.getByRole('button', { name: 'Sign in' }).click();
    await agent.getByTestId('connection').getByText('Live').waitFor();
    await agent.getByText('No conversations here').waitFor();

    // A customer asks for a human.
    const visitorContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const visitor = await openWidget(visitorContext, server);
    await visitor.getByRole('button', { name: 'Talk to a human' }).click();
    await visitor.locator('.jw-notice[data-notice="HandoffRequested"]').waitFor();

    // The router gives it to Sam: it appears in Sam's "Mine", live, without a click.
    const row = agent.locator('a.conv').first();
    await row.waitFor({ timeout: 30_000 });
    await row.click();
    await agent.locator('.conv-title').getByText('assigned to Sam Agent (you)').waitFor({ timeout: 30_000 });
    await agent.getByRole('button', { name: 'Unassign' }).waitFor();
    // The customer sees an agent join.
    await visitor.getByText(/has joined/).waitFor({ timeout: 30_000 });
    await agent.waitForTimeout(500);
    await screenshot(agent, 'teams');

    const list = await call<{ items: { id: string; assignee: string | null; status: string }[] }>('GET', '/api/v1/conversations?view=all');
    expect(list.items.map((c) => [c.assignee, c.status])).toEqual([[sam.id, 'open']]);
  });
});
