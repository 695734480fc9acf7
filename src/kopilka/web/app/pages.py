"""Every router of the members' app (and of the shop widget), in the order they are matched."""

from fastapi import APIRouter

from kopilka.web.app import (
    card,
    coupons,
    events,
    history,
    inbox,
    offers,
    profile,
    pwa,
    receipts,
    recommendations,
    rewards,
    rules,
    signin,
    stores,
    support,
    surveys,
    wallet,
    widget,
)

routers: list[APIRouter] = [
    signin.router,
    card.router,
    pwa.router,
    history.router,
    receipts.router,
    rewards.router,
    coupons.router,
    inbox.router,
    offers.router,
    events.router,
    recommendations.router,
    profile.router,
    stores.router,
    rules.router,
    support.router,
    surveys.router,
    wallet.router,
    widget.router,
]
