import { defineConfig } from 'vitest/config';

// Unit and component tests (jsdom). The browser end-to-end tests have their own config in e2e/.
export default defineConfig({
  esbuild: { jsx: 'automatic' },
  test: {
    include: ['protocol/src/**/*.test.ts', 'web/src/**/*.test.tsx', 'admin/src/**/*.test.tsx', 'admin/src/**/*.test.ts'],
    environment: 'jsdom',
    pool: 'threads',
  },
});
