import { readConfig } from './config';

describe('readConfig', () => {
  it('takes the build variables, trimming a trailing slash', () => {
    expect(readConfig({ EXPO_PUBLIC_JAMUNA_SERVER_URL: 'https://chat.example.com/', EXPO_PUBLIC_JAMUNA_TENANT_KEY: 'wk_abc', EXPO_PUBLIC_JAMUNA_TENANT: 'acme' }, null)).toEqual({
      serverUrl: 'https://chat.example.com',
      tenantKey: 'wk_abc',
      tenant: 'acme',
    });
  });

  it('in a browser, the page address overrides them and the server defaults to its origin', () => {
    expect(readConfig({ EXPO_PUBLIC_JAMUNA_TENANT_KEY: 'wk_built' }, { origin: 'http://127.0.0.1:4000', search: '?key=wk_page' })).toEqual({
      serverUrl: 'http://127.0.0.1:4000',
      tenantKey: 'wk_page',
      tenant: 'demo',
    });
    expect(readConfig({}, { origin: 'http://x', search: '?server=https://api.example.com&tenant=t1' })).toMatchObject({ serverUrl: 'https://api.example.com', tenant: 't1', tenantKey: '' });
  });

  it('without anything configured: localhost, no tenant key (visitors cannot start)', () => {
    expect(readConfig({}, null)).toEqual({ serverUrl: 'http://localhost:8080', tenantKey: '', tenant: 'demo' });
  });
});
