"""All tables, one module each. Importing this package registers them on ``Base.metadata``.

Foreign keys tie a row to its structural parent only (a posting to its entry, a line to its
purchase, an entry to its member). ``program_id`` columns carry no foreign key: programs are
never deleted, every key costs a look-up per inserted row, and the ledger tables take
several rows per purchase.
"""

from kopilka.models.api_key import ApiKey
from kopilka.models.audit_entry import AuditEntry
from kopilka.models.base import Base
from kopilka.models.broadcast import Broadcast
from kopilka.models.broadcast_recipient import BroadcastRecipient
from kopilka.models.clv_fit import ClvFit
from kopilka.models.consent_record import ConsentRecord
from kopilka.models.consumer_checkpoint import ConsumerCheckpoint
from kopilka.models.consumer_retry import ConsumerRetry
from kopilka.models.coupon_campaign import CouponCampaign
from kopilka.models.coupon_code import CouponCode
from kopilka.models.coupon_redemption import CouponRedemption
from kopilka.models.event_acceptance import EventAcceptance
from kopilka.models.experiment_assignment import ExperimentAssignment
from kopilka.models.gift_card import GiftCard
from kopilka.models.gift_card_transaction import GiftCardTransaction
from kopilka.models.idempotency_record import IdempotencyRecord
from kopilka.models.interaction import Interaction
from kopilka.models.item_availability import ItemAvailability
from kopilka.models.item_neighbour import ItemNeighbour
from kopilka.models.item_popularity import ItemPopularity
from kopilka.models.job_run import JobRun
from kopilka.models.journal_entry import JournalEntry
from kopilka.models.journey import Journey
from kopilka.models.journey_run import JourneyRun
from kopilka.models.journey_step_log import JourneyStepLog
from kopilka.models.journey_version import JourneyVersion
from kopilka.models.kpi_buyer_month import KpiBuyerMonth
from kopilka.models.kpi_day import KpiDay
from kopilka.models.kpi_member import KpiMember
from kopilka.models.kpi_member_month import KpiMemberMonth
from kopilka.models.kpi_point_day import KpiPointDay
from kopilka.models.kpi_tier_day import KpiTierDay
from kopilka.models.liability_snapshot import LiabilitySnapshot
from kopilka.models.lot import Lot
from kopilka.models.member import Member
from kopilka.models.member_balance import MemberBalance
from kopilka.models.member_benefit import MemberBenefit
from kopilka.models.member_consent import MemberConsent
from kopilka.models.member_day import MemberDay
from kopilka.models.member_fact import MemberFact
from kopilka.models.member_identifier import MemberIdentifier
from kopilka.models.member_prediction import MemberPrediction
from kopilka.models.member_session import MemberSession
from kopilka.models.member_sign_in_code import MemberSignInCode
from kopilka.models.member_tier import MemberTier
from kopilka.models.message import Message
from kopilka.models.message_status import MessageStatus
from kopilka.models.message_template import MessageTemplate
from kopilka.models.messaging_setting import MessagingSetting
from kopilka.models.outbox_event import OutboxEvent
from kopilka.models.posting import Posting
from kopilka.models.program import Program
from kopilka.models.program_event import ProgramEvent
from kopilka.models.program_version import ProgramVersion
from kopilka.models.purchase import Purchase
from kopilka.models.purchase_line import PurchaseLine
from kopilka.models.purchase_return import PurchaseReturn
from kopilka.models.push_subscription import PushSubscriptionRow
from kopilka.models.recommendation_build import RecommendationBuild
from kopilka.models.redemption import Redemption
from kopilka.models.redemption_allocation import RedemptionAllocation
from kopilka.models.reward import Reward
from kopilka.models.reward_code import RewardCode
from kopilka.models.reward_redemption import RewardRedemption
from kopilka.models.rule_usage import RuleUsage
from kopilka.models.segment import Segment
from kopilka.models.segment_member import SegmentMember
from kopilka.models.staff_member import StaffMember
from kopilka.models.staff_session import StaffSession
from kopilka.models.store import Store
from kopilka.models.support_setting import SupportSetting
from kopilka.models.suppression import Suppression
from kopilka.models.survey import Survey
from kopilka.models.survey_invitation import SurveyInvitation
from kopilka.models.survey_response import SurveyResponse
from kopilka.models.survey_version import SurveyVersion
from kopilka.models.ticket import Ticket
from kopilka.models.ticket_message import TicketMessage
from kopilka.models.tier_change import TierChange
from kopilka.models.wallet_registration import WalletRegistration
from kopilka.models.wallet_setting import WalletSetting
from kopilka.models.webhook_attempt import WebhookAttempt
from kopilka.models.webhook_delivery import WebhookDelivery
from kopilka.models.webhook_endpoint import WebhookEndpoint
from kopilka.models.widget_session import WidgetSession
from kopilka.models.widget_setting import WidgetSetting

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Base",
    "Broadcast",
    "BroadcastRecipient",
    "ClvFit",
    "ConsentRecord",
    "ConsumerCheckpoint",
    "ConsumerRetry",
    "CouponCampaign",
    "CouponCode",
    "CouponRedemption",
    "EventAcceptance",
    "ExperimentAssignment",
    "GiftCard",
    "GiftCardTransaction",
    "IdempotencyRecord",
    "Interaction",
    "ItemAvailability",
    "ItemNeighbour",
    "ItemPopularity",
    "JobRun",
    "JournalEntry",
    "Journey",
    "JourneyRun",
    "JourneyStepLog",
    "JourneyVersion",
    "KpiBuyerMonth",
    "KpiDay",
    "KpiMember",
    "KpiMemberMonth",
    "KpiPointDay",
    "KpiTierDay",
    "LiabilitySnapshot",
    "Lot",
    "Member",
    "MemberBalance",
    "MemberBenefit",
    "MemberConsent",
    "MemberDay",
    "MemberFact",
    "MemberIdentifier",
    "MemberPrediction",
    "MemberSession",
    "MemberSignInCode",
    "MemberTier",
    "Message",
    "MessageStatus",
    "MessageTemplate",
    "MessagingSetting",
    "OutboxEvent",
    "Posting",
    "Program",
    "ProgramEvent",
    "ProgramVersion",
    "Purchase",
    "PurchaseLine",
    "PurchaseReturn",
    "PushSubscriptionRow",
    "RecommendationBuild",
    "Redemption",
    "RedemptionAllocation",
    "Reward",
    "RewardCode",
    "RewardRedemption",
    "RuleUsage",
    "Segment",
    "SegmentMember",
    "StaffMember",
    "StaffSession",
    "Store",
    "SupportSetting",
    "Suppression",
    "Survey",
    "SurveyInvitation",
    "SurveyResponse",
    "SurveyVersion",
    "Ticket",
    "TicketMessage",
    "TierChange",
    "WalletRegistration",
    "WalletSetting",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WidgetSession",
    "WidgetSetting",
]
