import { describe, expect, it } from 'vitest';
import { displayName } from './contact';

describe('displayName', () => {
  const base = { id: '0190b6e2-7c4a-7d1e-9f3a-1b2c3d4e5f60', name: null, email: null, erased: false };
  it('prefers the name, then the e-mail address, then a short visitor id', () => {
    expect(displayName({ ...base, name: ' Grace Hopper ', email: 'grace@shop.example' }, base.id)).toBe('Grace Hopper');
    expect(displayName({ ...base, email: 'grace@shop.example' }, base.id)).toBe('grace@shop.example');
    expect(displayName({ ...base, name: '  ' }, base.id)).toMatch(/^Visitor /);
    expect(displayName(null, base.id)).toMatch(/^Visitor /);
  });
  it('never shows an erased customer by name', () => {
    expect(displayName({ ...base, name: 'Grace', erased: true }, base.id)).toBe('Erased user');
  });
});
