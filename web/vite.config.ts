// Builds the web page (web/) into dist/web, which the agent serves at `/`
// (src/api/web.ts). Everything is bundled: the page loads nothing from elsewhere.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    assetsDir: 'assets',
    // cytoscape is most of the bundle; one file is fine for a page served from loopback.
    chunkSizeWarningLimit: 1500,
  },
});
