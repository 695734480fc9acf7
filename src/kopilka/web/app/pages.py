"""Every router of the members' app (and of the shop widget), in the order they are matched."""

from fastapi import APIRouter

from kopilka.web.app import (
    card,
    coupons,
    history,
    inbox,
    profile,
    rewards,
    signin,
    stores,
    support,
    wallet,
    widget,
)

routers: list[APIRouter] = [
    signin.router,
    card.router,
    history.router,
    rewards.router,
    coupons.router,
    inbox.router,
    profile.router,
    stores.router,
    support.router,
    wallet.router,
    widget.router,
]
