"""The list of routers the application serves."""

from fastapi import APIRouter

from kopilka.activities.endpoints import router as activities_router
from kopilka.analytics.clv_endpoints import router as analytics_clv_router
from kopilka.analytics.finance_endpoints import router as analytics_finance_router
from kopilka.analytics.kpi_endpoints import router as analytics_kpi_router
from kopilka.apikeys.endpoints import router as apikeys_router
from kopilka.audit.endpoints import router as audit_router
from kopilka.benefits.endpoints import router as benefits_router
from kopilka.benefits.event_endpoints import router as program_events_router
from kopilka.coupons.endpoints import router as coupons_router
from kopilka.crm.endpoints import router as crm_router
from kopilka.customers.endpoints import router as customers_router
from kopilka.giftcards.endpoints import router as giftcards_router
from kopilka.imports.endpoints import router as imports_router
from kopilka.journeys.endpoints import router as journeys_router
from kopilka.ledger.endpoints import router as ledger_router
from kopilka.members.endpoints import router as members_router
from kopilka.messaging.endpoints import router as messaging_router
from kopilka.messaging.member_endpoints import router as member_messaging_router
from kopilka.messaging.pages import router as messaging_pages_router
from kopilka.privacy.endpoints import router as privacy_router
from kopilka.programs.endpoints import router as program_router
from kopilka.purchases.endpoints import router as purchases_router
from kopilka.recommendations.endpoints import router as recommendations_router
from kopilka.rewards.endpoints import router as rewards_router
from kopilka.segments.endpoints import router as segments_router
from kopilka.shopwidget.endpoints import router as shopwidget_router
from kopilka.staff.endpoints import router as staff_router
from kopilka.stores.endpoints import router as stores_router
from kopilka.support.endpoints import router as support_router
from kopilka.system.endpoints import router as system_router
from kopilka.tiers.endpoints import router as tiers_router
from kopilka.wallet.endpoints import router as wallet_router
from kopilka.wallet.webservice import router as wallet_webservice_router
from kopilka.webhooks.endpoints import router as webhooks_router
from kopilka.worker.endpoints import router as events_router

# Routes are matched in this order: the till's calls (purchases) come first, since every
# route tried before the right one costs time on every request.
routers: list[APIRouter] = [
    purchases_router,
    system_router,
    # Before the members' routes: /v1/members/duplicates is not a member's id.
    customers_router,
    members_router,
    privacy_router,
    imports_router,
    activities_router,
    ledger_router,
    program_router,
    tiers_router,
    rewards_router,
    benefits_router,
    program_events_router,
    coupons_router,
    giftcards_router,
    webhooks_router,
    messaging_router,
    member_messaging_router,
    messaging_pages_router,
    stores_router,
    crm_router,
    analytics_kpi_router,
    analytics_clv_router,
    analytics_finance_router,
    segments_router,
    recommendations_router,
    journeys_router,
    support_router,
    events_router,
    apikeys_router,
    staff_router,
    audit_router,
    wallet_router,
    wallet_webservice_router,
    shopwidget_router,
]
