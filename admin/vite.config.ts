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
    // ECharts alone is ~550 kB before gzip; it is split off with the dashboard, so warn only above it.
    chunkSizeWarningLimit: 600,
    rolldownOptions: {
      output: {
        // Shared chunks would otherwise be named after their first module ("css-….js" for
        // Element Plus style imports), which misleads anyone reading the bundle report.
        chunkFileNames: (chunk) => `assets/${chunk.isEntry || chunk.isDynamicEntry ? '[name]' : 'shared'}-[hash].js`,
      },
    },
  },
  test: {
    environment: 'jsdom',
    include: ['tests/**/*.spec.ts'],
    server: { deps: { inline: ['element-plus'] } },
    setupFiles: ['tests/setup.ts'],
  },
})
