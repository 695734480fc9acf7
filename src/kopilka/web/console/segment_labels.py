"""Names people read for the segment builder and the definitions in words: each predicate,
each parameter and each value of a choice. Catalogue texts (the templates and
``segment_words`` translate them); a predicate another feature adds later without a label
here shows its own ``type`` and field names, never an error."""

from kopilka.segments.domain import SegmentKind


def _(text: str) -> str:
    """Marks a text for the catalogue; it is translated where it is shown."""
    return text


PREDICATE_LABELS: dict[str, str] = {
    "purchases": _("Purchases: number, spend or average check"),
    "bought": _("Bought a category, product or at a store"),
    "days_since_last_purchase": _("Days since the last purchase"),
    "points_balance": _("Points balance"),
    "points_expiring": _("Points about to expire"),
    "tier": _("Tier"),
    "tags": _("Tags"),
    "consent": _("Consent to messages"),
    "profile": _("Profile field has a value"),
    "profile_present": _("Profile field is filled in"),
    "attribute": _("Custom attribute"),
    "age": _("Age"),
    "birthday_month": _("Birthday month"),
    "tenure_days": _("Days since joining"),
    "joined": _("Joined between dates"),
    "rfm_group": _("RFM group"),
    "rfm_score": _("RFM score"),
    "survey_score": _("Survey score"),
    "churn_risk": _("Churn risk (percent)"),
    "clv": _("Predicted lifetime value (CLV), minor units"),
}

# The order of the builder's list of predicates: the common ones first.
PREDICATE_ORDER = tuple(PREDICATE_LABELS)

PARAM_LABELS: dict[str, str] = {
    "range": _("Comparison"),
    "measure": _("Measure"),
    "last_days": _("In the last N days"),
    "since": _("From (date)"),
    "until": _("Until (date)"),
    "categories": _("Categories"),
    "skus": _("Products (SKU)"),
    "stores": _("Stores (codes)"),
    "never": _("Did not buy (the opposite)"),
    "currency": _("Points currency"),
    "within_days": _("Within N days"),
    "min": _("At least"),
    "tiers": _("Tiers"),
    "tags": _("Tags"),
    "all": _("Has every one of the tags"),
    "channel": _("Channel"),
    "purpose": _("Purpose"),
    "granted": _("Granted"),
    "field": _("Profile field"),
    "one_of": _("One of the values"),
    "present": _("Filled in"),
    "name": _("Attribute name"),
    "exists": _("Is set"),
    "equals": _("Equals"),
    "months": _("Months (1–12)"),
    "groups": _("RFM groups"),
    "score": _("Score"),
    "survey": _("Survey (key)"),
}

# Hints under a field: how to type what the definition stores.
PARAM_HINTS: dict[str, str] = {
    "categories": _("Separate values with commas."),
    "skus": _("Separate values with commas."),
    "stores": _("Separate values with commas."),
    "tiers": _("Tier ids, separated with commas."),
    "tags": _("Separate values with commas."),
    "one_of": _("Separate values with commas."),
    "months": _("Numbers separated with commas: 12, 1, 2."),
    "equals": _('A number, true or false; a text in "quotes" if it looks like one of them.'),
    "currency": _("Empty: the program's points."),
}

# Hints of the comparison for predicates whose values are money in minor units.
MONEY_HINT = _("Spend and average check are money in minor units (kopecks): 500000 is 5,000.00.")
MONEY_PREDICATES = frozenset({"purchases"})

OPTION_LABELS: dict[str, str] = {
    # measures
    "count": _("number of purchases"),
    "spend": _("spend"),
    "average_check": _("average check"),
    "last": _("last answer"),
    "average": _("average of answers"),
    # profile fields
    "email": _("e-mail"),
    "phone": _("phone"),
    "birthday": _("birthday"),
    "language": _("language"),
    "gender": _("gender"),
    "city": _("city"),
    "address": _("address"),
    "preferred_store": _("preferred store"),
    "preferred_channel": _("preferred channel"),
    "status": _("status"),
    # channels and purposes
    "sms": _("SMS"),
    "push": _("push"),
    "marketing": _("marketing"),
    "service": _("service"),
    # RFM
    "recency": _("recency"),
    "frequency": _("frequency"),
    "monetary": _("monetary"),
    "champions": _("champions"),
    "loyal": _("loyal"),
    "potential_loyalists": _("potential loyalists"),
    "new": _("new"),
    "promising": _("promising"),
    "need_attention": _("need attention"),
    "about_to_sleep": _("about to sleep"),
    "at_risk": _("at risk"),
    "cant_lose_them": _("can't lose them"),
    "hibernating": _("hibernating"),
    "lost": _("lost"),
}
# A profile field called "name" is the member's name (a predicate's "name" parameter is
# the attribute's name: PARAM_LABELS).
FIELD_OPTION_LABELS: dict[str, str] = {"name": _("name")}

RANGE_LABELS: dict[str, str] = {
    "min": _("at least"),
    "max": _("at most"),
    "between": _("between"),
    "exactly": _("exactly"),
}

TRISTATE_LABELS: dict[str, str] = {"": "—", "yes": _("yes"), "no": _("no")}

KIND_LABELS: dict[str, str] = {
    SegmentKind.DYNAMIC: _("dynamic"),
    SegmentKind.STATIC: _("static"),
}
