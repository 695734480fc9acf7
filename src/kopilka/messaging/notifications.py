"""The notifications a program owes its members: each kind, what its templates may read,
whether it is on by default, and the texts shipped in Russian and English (a program edits
its own copies).

A kind is a **service** message (about the member's own points, tier, rewards: sent unless
the member opted out of that channel) or **marketing** (news, offers, broadcasts: sent only
with the member's prior consent).
"""

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from kopilka.messaging.domain import Part


class Purpose(StrEnum):
    SERVICE = "service"
    MARKETING = "marketing"


# What every template may read: who the member is, the program, the member's points now,
# the links a message may carry, the items recommended to the member (a list of
# {sku, name, category, reason, score}; docs/recommendations.md), the member's points that
# expire soonest ({amount, expires_on, days}, or none) and the rewards those points pay for
# now (a list of {key, name, points}, dearest first). The last three are read per member
# only when a text in use mentions them (messaging/batch.py).
COMMON = frozenset(
    {
        "member",
        "program",
        "balance",
        "app_url",
        "unsubscribe_url",
        "recommendations",
        "expiring",
        "affordable",
    }
)

Texts = dict[Part, str]


@dataclass(frozen=True)
class NotificationKind:
    key: str
    purpose: Purpose
    on_by_default: bool
    variables: frozenset[str]  # beyond COMMON
    defaults: dict[str, Texts]  # language → part → template
    sample: dict[str, Any] = field(default_factory=dict)  # for previews and checks

    def allowed(self) -> frozenset[str]:
        return COMMON | self.variables


_SAMPLE_COMMON: dict[str, Any] = {
    "member": {"name": "Анна", "first_name": "Анна"},
    "program": {"name": "Kopilka Club"},
    "balance": 1250,
    "app_url": "https://club.example/app",
    "unsubscribe_url": "https://club.example/u/token",
    "recommendations": [
        {
            "sku": "COF-006",
            "name": "Кофе в зёрнах, 250 г",
            "category": "coffee",
            "reason": "bought_with",
            "score": 0.42,
        }
    ],
    "expiring": {"amount": 400, "expires_on": date(2027, 1, 31), "days": 7},
    "affordable": [
        {"key": "cinema", "name": "Билет в кино", "points": 800},
        {"key": "coffee", "name": "Кофе в подарок", "points": 300},
    ],
}


def _kind(
    key: str,
    purpose: Purpose,
    variables: set[str],
    ru: Texts,
    en: Texts,
    sample: dict[str, Any],
    *,
    on: bool = True,
) -> NotificationKind:
    return NotificationKind(
        key, purpose, on, frozenset(variables), {"ru": ru, "en": en}, _SAMPLE_COMMON | sample
    )


S, T, SMS, PT, PB = Part.SUBJECT, Part.TEXT, Part.SMS, Part.PUSH_TITLE, Part.PUSH_BODY
# The verb agrees with the number in Russian: "21 балл сгорит", "400 баллов сгорят".
BURN = "{{ amount|plural('сгорит', 'сгорят', 'сгорят') }}"
# What the member's points pay for now (``affordable``, dearest first): all of them in a
# text, the first (its name cut short) in an SMS or a push.
CAN_BUY_RU = (
    "{% if affordable %} Ваших баллов хватит на: {% for a in affordable %}{{ a.name }} "
    "({{ a.points|points }}){% if not loop.last %}, {% endif %}{% endfor %}.{% endif %}"
)
CAN_BUY_EN = (
    "{% if affordable %} Your points can buy: {% for a in affordable %}{{ a.name }} "
    "({{ a.points|points }}){% if not loop.last %}, {% endif %}{% endfor %}.{% endif %}"
)
FIRST_BUY_RU = "{% if affordable %}. Хватит на «{{ affordable[0].name|truncate(30) }}»{% endif %}"
FIRST_BUY_EN = "{% if affordable %}. Enough for {{ affordable[0].name|truncate(30) }}{% endif %}"

KINDS: dict[str, NotificationKind] = {
    kind.key: kind
    for kind in (
        _kind(
            "points_earned",
            Purpose.SERVICE,
            {"amount", "purchase_total", "currency"},
            {
                S: "Вам начислено {{ amount|points }}",
                T: "{{ member.name }}, за покупку на {{ purchase_total|money(currency) }} вам "
                "начислено {{ amount|points }}. На счёте: {{ balance|points }}.",
                SMS: "+{{ amount|points }}. Баланс: {{ balance|points }}",
                PT: "+{{ amount|points }}",
                PB: "Баланс: {{ balance|points }}",
            },
            {
                S: "You earned {{ amount|points }}",
                T: "{{ member.name }}, your purchase of {{ purchase_total|money(currency) }} "
                "earned {{ amount|points }}. Your balance: {{ balance|points }}.",
                SMS: "+{{ amount|points }}. Balance: {{ balance|points }}",
                PT: "+{{ amount|points }}",
                PB: "Balance: {{ balance|points }}",
            },
            {"amount": 125, "purchase_total": 1250000, "currency": "RUB"},
            on=False,
        ),
        _kind(
            "points_spent",
            Purpose.SERVICE,
            {"amount"},
            {
                S: "Списано {{ amount|points }}",
                T: "{{ member.name }}, списано {{ amount|points }}. "
                "На счёте: {{ balance|points }}.",
                SMS: "Списано {{ amount|points }}. Баланс: {{ balance|points }}",
                PT: "−{{ amount|points }}",
                PB: "Баланс: {{ balance|points }}",
            },
            {
                S: "{{ amount|points }} spent",
                T: "{{ member.name }}, {{ amount|points }} were spent. "
                "Your balance: {{ balance|points }}.",
                SMS: "{{ amount|points }} spent. Balance: {{ balance|points }}",
                PT: "−{{ amount|points }}",
                PB: "Balance: {{ balance|points }}",
            },
            {"amount": 300},
        ),
        _kind(
            "points_expiring",
            Purpose.SERVICE,
            {"amount", "expires_on", "days"},
            {
                S: "{{ amount|points }} " + BURN + " {{ expires_on|date }}",
                T: "{{ member.name }}, {{ amount|points }} " + BURN + " {{ expires_on|date }} — "
                "через {{ days }} {{ days|plural('день', 'дня', 'дней') }}. "
                "Успейте потратить их." + CAN_BUY_RU,
                SMS: "{{ amount|points }} "
                + BURN
                + " {{ expires_on|date('short') }}"
                + FIRST_BUY_RU,
                PT: "Баллы скоро сгорят",
                PB: "{{ amount|points }} "
                + BURN
                + " {{ expires_on|date('short') }}"
                + FIRST_BUY_RU,
            },
            {
                S: "{{ amount|points }} expire on {{ expires_on|date }}",
                T: "{{ member.name }}, {{ amount|points }} expire on {{ expires_on|date }}, in "
                "{{ days }} {{ days|plural('day', 'days') }}. Spend them before then." + CAN_BUY_EN,
                SMS: "{{ amount|points }} expire on {{ expires_on|date('short') }}" + FIRST_BUY_EN,
                PT: "Points expiring soon",
                PB: "{{ amount|points }} expire on {{ expires_on|date('short') }}" + FIRST_BUY_EN,
            },
            {"amount": 400, "expires_on": date(2027, 1, 31), "days": 7},
        ),
        _kind(
            "points_released",
            Purpose.SERVICE,
            {"amount"},
            {
                S: "{{ amount|points }} можно тратить",
                T: "{{ member.name }}, {{ amount|points }} "
                "{{ amount|plural('стал доступен', 'стали доступны', 'стали доступны') }}. "
                "На счёте: {{ balance|points }}.",
                SMS: "{{ amount|points }} доступны. Баланс: {{ balance|points }}",
                PT: "Баллы доступны",
                PB: "{{ amount|points }} можно тратить",
            },
            {
                S: "{{ amount|points }} ready to spend",
                T: "{{ member.name }}, {{ amount|points }} are now available. "
                "Your balance: {{ balance|points }}.",
                SMS: "{{ amount|points }} available. Balance: {{ balance|points }}",
                PT: "Points available",
                PB: "{{ amount|points }} ready to spend",
            },
            {"amount": 125},
        ),
        _kind(
            "tier_upgraded",
            Purpose.SERVICE,
            {"tier", "benefits"},
            {
                S: "Новый уровень: {{ tier.name }}",
                T: "{{ member.name }}, поздравляем: ваш уровень теперь «{{ tier.name }}»."
                "{% if benefits %} Что вас ждёт:{% for b in benefits %} {{ b }};{% endfor %}"
                "{% endif %}",
                SMS: "Ваш новый уровень: {{ tier.name }}",
                PT: "Новый уровень: {{ tier.name }}",
                PB: "Поздравляем!",
            },
            {
                S: "Your new tier: {{ tier.name }}",
                T: "{{ member.name }}, congratulations: you are now {{ tier.name }}."
                "{% if benefits %} What it brings:{% for b in benefits %} {{ b }};{% endfor %}"
                "{% endif %}",
                SMS: "Your new tier: {{ tier.name }}",
                PT: "New tier: {{ tier.name }}",
                PB: "Congratulations!",
            },
            {"tier": {"id": "gold", "name": "Gold"}, "benefits": ["+50% points"]},
        ),
        _kind(
            "tier_downgraded",
            Purpose.SERVICE,
            {"tier", "from_tier"},
            {
                S: "Ваш уровень: {{ tier.name }}",
                T: "{{ member.name }}, ваш уровень изменился с «{{ from_tier.name }}» на "
                "«{{ tier.name }}».",
                SMS: "Ваш уровень: {{ tier.name }}",
                PT: "Уровень изменился",
                PB: "Теперь: {{ tier.name }}",
            },
            {
                S: "Your tier: {{ tier.name }}",
                T: "{{ member.name }}, your tier changed from {{ from_tier.name }} to "
                "{{ tier.name }}.",
                SMS: "Your tier: {{ tier.name }}",
                PT: "Tier changed",
                PB: "Now: {{ tier.name }}",
            },
            {"tier": {"id": "silver", "name": "Silver"}, "from_tier": {"name": "Gold"}},
        ),
        _kind(
            "tier_grace_started",
            Purpose.SERVICE,
            {"tier", "grace_until"},
            {
                S: "Сохраните уровень «{{ tier.name }}»",
                T: "{{ member.name }}, чтобы сохранить уровень «{{ tier.name }}», совершите "
                "покупки до {{ grace_until|date }}.",
                SMS: "Уровень {{ tier.name }} сохранится до {{ grace_until|date('short') }}",
                PT: "Сохраните уровень",
                PB: "До {{ grace_until|date('short') }}",
            },
            {
                S: "Keep your {{ tier.name }} tier",
                T: "{{ member.name }}, shop before {{ grace_until|date }} to keep your "
                "{{ tier.name }} tier.",
                SMS: "{{ tier.name }} kept until {{ grace_until|date('short') }}",
                PT: "Keep your tier",
                PB: "Until {{ grace_until|date('short') }}",
            },
            {"tier": {"name": "Gold"}, "grace_until": date(2027, 3, 31)},
        ),
        _kind(
            "birthday",
            Purpose.SERVICE,
            {"bonus"},
            {
                S: "С днём рождения, {{ member.name }}!",
                T: "{{ member.name }}, с днём рождения!"
                "{% if bonus %} В подарок — {{ bonus|points }}.{% endif %}",
                SMS: "С днём рождения!{% if bonus %} Дарим {{ bonus|points }}{% endif %}",
                PT: "С днём рождения!",
                PB: "{% if bonus %}Дарим {{ bonus|points }}{% else %}Поздравляем!{% endif %}",
            },
            {
                S: "Happy birthday, {{ member.name }}!",
                T: "{{ member.name }}, happy birthday!"
                "{% if bonus %} Here are {{ bonus|points }} from us.{% endif %}",
                SMS: "Happy birthday!{% if bonus %} +{{ bonus|points }}{% endif %}",
                PT: "Happy birthday!",
                PB: "{% if bonus %}+{{ bonus|points }}{% else %}Best wishes!{% endif %}",
            },
            {"bonus": 500},
        ),
        _kind(
            "coupon_issued",
            Purpose.SERVICE,
            {"code", "description", "expires_at"},
            {
                S: "Ваш купон: {{ code }}",
                T: "{{ member.name }}, ваш купон {{ code }}: {{ description }}."
                "{% if expires_at %} Действует до {{ expires_at|date }}.{% endif %}",
                SMS: "Купон {{ code }}: {{ description }}",
                PT: "Новый купон",
                PB: "{{ description }}",
            },
            {
                S: "Your coupon: {{ code }}",
                T: "{{ member.name }}, your coupon {{ code }}: {{ description }}."
                "{% if expires_at %} Valid until {{ expires_at|date }}.{% endif %}",
                SMS: "Coupon {{ code }}: {{ description }}",
                PT: "New coupon",
                PB: "{{ description }}",
            },
            {"code": "CAFE-7Q2K", "description": "−10%", "expires_at": date(2027, 2, 1)},
        ),
        _kind(
            "reward_ready",
            Purpose.SERVICE,
            {"reward", "code"},
            {
                S: "Награда «{{ reward }}» ждёт вас",
                T: "{{ member.name }}, награда «{{ reward }}» готова."
                "{% if code %} Код: {{ code }}.{% endif %}",
                SMS: "Награда готова: {{ reward }}{% if code %}, код {{ code }}{% endif %}",
                PT: "Награда готова",
                PB: "{{ reward }}",
            },
            {
                S: "Your reward is ready: {{ reward }}",
                T: "{{ member.name }}, your reward {{ reward }} is ready."
                "{% if code %} Code: {{ code }}.{% endif %}",
                SMS: "Reward ready: {{ reward }}{% if code %}, code {{ code }}{% endif %}",
                PT: "Reward ready",
                PB: "{{ reward }}",
            },
            {"reward": "Кофе в подарок", "code": "R-5521"},
        ),
        _kind(
            "giftcard_received",
            Purpose.SERVICE,
            {"amount", "currency", "code"},
            {
                S: "Вам подарочная карта на {{ amount|money(currency) }}",
                T: "{{ member.name }}, вам подарочная карта на {{ amount|money(currency) }}. "
                "Номер: {{ code }}.",
                SMS: "Подарочная карта {{ amount|money(currency) }}: {{ code }}",
                PT: "Подарочная карта",
                PB: "{{ amount|money(currency) }}",
            },
            {
                S: "A gift card of {{ amount|money(currency) }} for you",
                T: "{{ member.name }}, here is a gift card of {{ amount|money(currency) }}. "
                "Number: {{ code }}.",
                SMS: "Gift card {{ amount|money(currency) }}: {{ code }}",
                PT: "Gift card",
                PB: "{{ amount|money(currency) }}",
            },
            {"amount": 300000, "currency": "RUB", "code": "6280 0012 3456 7890"},
        ),
        _kind(
            "program_changed",
            Purpose.SERVICE,
            {"summary", "effective_at"},
            {
                S: "Изменения в программе «{{ program.name }}»",
                T: "{{ member.name }}, с {{ effective_at|date }} в программе изменится: "
                "{{ summary }}",
                SMS: "Изменения в программе с {{ effective_at|date('short') }}",
                PT: "Изменения в программе",
                PB: "{{ summary }}",
            },
            {
                S: "Changes to {{ program.name }}",
                T: "{{ member.name }}, from {{ effective_at|date }} the program changes: "
                "{{ summary }}",
                SMS: "Program changes from {{ effective_at|date('short') }}",
                PT: "Program changes",
                PB: "{{ summary }}",
            },
            {"summary": "Gold earns 2×.", "effective_at": date(2027, 1, 1)},
        ),
        _kind(
            "consent_confirm",
            Purpose.SERVICE,
            {"confirm_url"},
            {
                S: "Подтвердите подписку на новости «{{ program.name }}»",
                T: "{{ member.name }}, чтобы получать наши новости и предложения, подтвердите "
                "адрес: {{ confirm_url }}\nЕсли вы не подписывались, просто не отвечайте.",
                SMS: "Подтвердите подписку: {{ confirm_url }}",
                PT: "Подтвердите подписку",
                PB: "Откройте письмо, чтобы подтвердить адрес",
            },
            {
                S: "Confirm your subscription to {{ program.name }}",
                T: "{{ member.name }}, to get our news and offers, confirm your address: "
                "{{ confirm_url }}\nIf you did not subscribe, ignore this message.",
                SMS: "Confirm your subscription: {{ confirm_url }}",
                PT: "Confirm your subscription",
                PB: "Open the e-mail to confirm your address",
            },
            {"confirm_url": "https://club.example/m/confirm/token"},
        ),
        _kind(
            # A one-time code the member asked for to sign in to the app: sent at once, even
            # to a member who opted out of service messages on the channel (they asked).
            "sign_in_code",
            Purpose.SERVICE,
            {"code", "minutes"},
            {
                S: "Код для входа: {{ code }}",
                T: "{{ member.name }}, ваш код для входа в приложение «{{ program.name }}»: "
                "{{ code }}\nОн действует {{ minutes }} "
                "{{ minutes|plural('минуту', 'минуты', 'минут') }}. Никому его не сообщайте. "
                "Если вы не просили код, просто не отвечайте.",
                SMS: "{{ code }} — код для входа. Никому его не сообщайте",
                PT: "Код для входа",
                PB: "{{ code }}",
            },
            {
                S: "Your sign-in code: {{ code }}",
                T: "{{ member.name }}, your code to sign in to the {{ program.name }} app: "
                "{{ code }}\nIt is valid for {{ minutes }} "
                "{{ minutes|plural('minute', 'minutes') }}. Do not share it with anyone. "
                "If you did not ask for a code, ignore this message.",
                SMS: "{{ code }} is your sign-in code. Do not share it",
                PT: "Your sign-in code",
                PB: "{{ code }}",
            },
            {"code": "482913", "minutes": 10},
        ),
        _kind(
            "ticket_reply",
            Purpose.SERVICE,
            {"subject", "reply", "author", "reply_to"},
            {
                S: "Re: {{ subject }}",
                T: "{{ member.name }}, ответ на ваше обращение «{{ subject }}»:\n\n{{ reply }}"
                "\n\n— {{ author }}"
                "{% if reply_to %}\n\nЧтобы ответить, напишите на {{ reply_to }} "
                "или просто ответьте на это письмо.{% endif %}",
                SMS: "Ответ по обращению «{{ subject }}» — в приложении",
                PT: "Ответ по обращению",
                PB: "{{ subject }}",
            },
            {
                S: "Re: {{ subject }}",
                T: '{{ member.name }}, a reply to your request "{{ subject }}":\n\n{{ reply }}'
                "\n\n— {{ author }}"
                "{% if reply_to %}\n\nTo answer, write to {{ reply_to }} "
                "or simply reply to this e-mail.{% endif %}",
                SMS: 'A reply to "{{ subject }}" is in the app',
                PT: "A reply to your request",
                PB: "{{ subject }}",
            },
            {
                "subject": "Баллы за покупку",
                "reply": "Баллы начислены, спасибо за терпение.",
                "author": "Мария",
                "reply_to": "support+token@reply.club.example",
            },
        ),
        _kind(
            "survey_invitation",
            Purpose.MARKETING,
            {"survey", "expires_at"},
            {
                S: "{{ member.name }}, оцените нас: {{ survey }}",
                T: "{{ member.name }}, расскажите, как всё прошло: ответьте на пару вопросов "
                "«{{ survey }}» в приложении: {{ app_url }}. Опрос открыт до "
                "{{ expires_at|date }}.",
                SMS: "Оцените нас: {{ survey }}. {{ app_url }}",
                PT: "Как всё прошло?",
                PB: "{{ survey }}",
            },
            {
                S: "{{ member.name }}, how did we do? {{ survey }}",
                T: "{{ member.name }}, tell us how it went: answer a few questions of "
                '"{{ survey }}" in the app: {{ app_url }}. Open until {{ expires_at|date }}.',
                SMS: "How did we do? {{ survey }}. {{ app_url }}",
                PT: "How did we do?",
                PB: "{{ survey }}",
            },
            {"survey": "Покупка в магазине", "expires_at": date(2027, 2, 14)},
        ),
        _kind(
            "broadcast",
            Purpose.MARKETING,
            {"title", "body"},
            {
                S: "{{ title }}",
                T: "{{ body }}",
                SMS: "{{ body }}",
                PT: "{{ title }}",
                PB: "{{ body }}",
            },
            {
                S: "{{ title }}",
                T: "{{ body }}",
                SMS: "{{ body }}",
                PT: "{{ title }}",
                PB: "{{ body }}",
            },
            {"title": "Неделя кофе", "body": "Двойные баллы на кофе до воскресенья."},
        ),
    )
}


def benefit_lines(benefits: dict[str, Any], language: str) -> list[str]:
    """A tier's benefits (``TierBenefits`` as a dict) as short lines a message lists."""
    ru = language == "ru"
    lines: list[str] = []
    rate = benefits.get("earn_rate_percent", 100)
    if rate != 100:
        factor = f"{rate / 100:g}".replace(".", "," if ru else ".")
        lines.append(f"баллы ×{factor}" if ru else f"points ×{factor}")
    if discount := benefits.get("discount_percent", 0):
        lines.append(f"скидка {discount} %" if ru else f"{discount}% off")
    for flag, ru_text, en_text in (
        ("free_delivery", "бесплатная доставка", "free delivery"),
        ("priority_service", "обслуживание без очереди", "priority service"),
        ("early_access", "ранний доступ к распродажам", "early access to sales"),
    ):
        if benefits.get(flag):
            lines.append(ru_text if ru else en_text)
    if benefits.get("exclusive_rewards"):
        lines.append("особые награды" if ru else "exclusive rewards")
    return lines
