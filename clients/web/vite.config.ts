import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';

// The embeddable widget: one self-contained script (React included, CSS
// inlined into its shadow root) at clients/dist/widget.js, and the demo
// page (public/index.html) at clients/dist/index.html.
export default defineConfig({
  plugins: [react()],
  define: { 'process.env.NODE_ENV': JSON.stringify('production') },
  build: {
    outDir: fileURLToPath(new URL('../dist', import.meta.url)),
    emptyOutDir: true,
    target: 'es2020',
    lib: {
      entry: fileURLToPath(new URL('src/main.tsx', import.meta.url)),
      name: 'JamunaWidget',
      formats: ['iife'],
      fileName: () => 'widget.js',
    },
  },
});
