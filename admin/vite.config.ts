/// <reference types="vitest/config" />
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'
import AutoImport from 'unplugin-auto-import/vite'
import Components from 'unplugin-vue-components/vite'
import { ElementPlusResolver } from 'unplugin-vue-components/resolvers'

// The dev server forwards API calls to a locally running server (`cargo run`, port 8080),
// so the browser sees one origin in development just as it does when the server serves /admin/.
const apiTarget = process.env.ADMIN_API_TARGET ?? 'http://127.0.0.1:8080'

export default defineConfig({
  base: '/admin/',
  plugins: [
    vue(),
    AutoImport({
      resolvers: [ElementPlusResolver()],
      dts: 'src/auto-imports.d.ts',
    }),
    Components({
      resolvers: [ElementPlusResolver()],
      dts: 'src/components.d.ts',
    }),
  ],
  server: {
    host: '127.0.0.1',
    port: 5173,
    proxy: {
      '/api': { target: apiTarget, changeOrigin: false },
    },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // The bundle budget script reads the manifest to find what the first page load fetches.
    manifest: true,
    // Never inline assets as data: URLs, so the server's CSP needs no `data:` for scripts/fonts.
    assetsInlineLimit: 0,
  },
  test: {
    environment: 'jsdom',
    include: ['tests/**/*.spec.ts'],
    server: { deps: { inline: ['element-plus'] } },
    setupFiles: ['tests/setup.ts'],
  },
})
