import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import { useSessionStore } from './stores/session'

// Pages are loaded on demand, so the first load carries only the shell and the login form
// (the dashboard's charting library arrives with the dashboard).
export const routes: RouteRecordRaw[] = [
  { path: '/login', name: 'login', component: () => import('./views/LoginView.vue'), meta: { public: true, title: '登录' } },
  {
    path: '/',
    component: () => import('./views/LayoutView.vue'),
    children: [
      { path: '', redirect: { name: 'dashboard' } },
      { path: 'dashboard', name: 'dashboard', component: () => import('./views/DashboardView.vue'), meta: { title: '数据概览' } },
      { path: 'merchants', name: 'merchants', component: () => import('./views/MerchantsView.vue'), meta: { title: '商户管理' } },
      { path: 'users', name: 'users', component: () => import('./views/UsersView.vue'), meta: { title: '用户管理' } },
      { path: 'orders', name: 'orders', component: () => import('./views/OrdersView.vue'), meta: { title: '订单管理' } },
      { path: 'points-rules', name: 'points-rules', component: () => import('./views/PointsRulesView.vue'), meta: { title: '积分规则' } },
      { path: 'settlements', name: 'settlements', component: () => import('./views/SettlementsView.vue'), meta: { title: '商户结算' } },
      { path: 'reconciliation', name: 'reconciliation', component: () => import('./views/ReconciliationView.vue'), meta: { title: '交易对账' } },
      { path: 'risk-rules', name: 'risk-rules', component: () => import('./views/RiskRulesView.vue'), meta: { title: '风控规则' } },
      { path: 'audit-log', name: 'audit-log', component: () => import('./views/AuditLogView.vue'), meta: { title: '操作日志' } },
    ],
  },
  { path: '/:pathMatch(.*)*', redirect: '/' },
]

export function createAppRouter() {
  const router = createRouter({ history: createWebHistory(import.meta.env.BASE_URL), routes })
  router.beforeEach((to) => {
    const session = useSessionStore()
    if (!to.meta.public && !session.loggedIn) {
      return { name: 'login', query: to.fullPath !== '/' ? { redirect: to.fullPath } : {} }
    }
    if (to.name === 'login' && session.loggedIn) return { name: 'dashboard' }
    return true
  })
  router.afterEach((to) => {
    const title = typeof to.meta.title === 'string' ? to.meta.title : ''
    document.title = title ? `${title} · 积分支付管理后台` : '积分支付管理后台'
  })
  return router
}
