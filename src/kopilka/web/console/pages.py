"""Every router of the console, in the order they are matched."""

from fastapi import APIRouter

from kopilka.web.console import (
    account_security,
    apikeys,
    audit,
    broadcasts,
    coupons,
    dashboard,
    giftcards,
    member_actions,
    members,
    program,
    rewards,
    segments,
    signin,
    staff,
    stores,
    surveys,
    templates,
    tickets,
    tiers,
    webhooks,
)

routers: list[APIRouter] = [
    signin.router,
    account_security.router,
    dashboard.router,
    members.router,
    member_actions.router,
    program.router,
    tiers.router,
    rewards.router,
    coupons.router,
    giftcards.router,
    stores.router,
    segments.router,
    templates.router,
    broadcasts.router,
    tickets.router,
    surveys.router,
    webhooks.router,
    apikeys.router,
    staff.router,
    audit.router,
]
