import { createApp } from 'vue'
import { createPinia } from 'pinia'
import App from './App.vue'
import { createAppRouter } from './router'
import { setSessionHooks } from './api/http'
import { useSessionStore } from './stores/session'
import './styles.css'
// Components are imported on demand by the resolver; these services are called from script
// code, so their styles are imported here once.
import 'element-plus/es/components/message/style/css'
import 'element-plus/es/components/message-box/style/css'

const app = createApp(App)
const pinia = createPinia()
app.use(pinia)
const router = createAppRouter()
app.use(router)

const session = useSessionStore(pinia)
setSessionHooks({
  accessToken: () => session.accessToken,
  refresh: () => session.refresh(),
  expired: () => {
    session.expire()
    const current = router.currentRoute.value
    if (current.name !== 'login') {
      void router.replace({ name: 'login', query: { redirect: current.fullPath } })
    }
  },
})

app.mount('#app')
