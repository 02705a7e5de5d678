"""Take a packet the platform pushed: keep it, store what it says, announce it.

The order is what makes a push safe to acknowledge:

1. the raw packet is stored first (compressed, with a TTL), so nothing the platform sent
   is lost even if our parser misreads it;
2. reports are written first-wins (see ``adapters.links``); MO messages are stored per
   mobile, and an opt-out keyword puts the number on the opt-out list;
3. events go to the bus, for every report that settled a recipient now *and* for every
   exact repeat of a stored one: if announcing failed before, the platform's re-push
   announces it now. Consumers drop duplicates by ``event_id``;
4. only then does the caller answer 200. Any failure before that is a 5xx, and the
   platform pushes again; by the rules above a repeat changes nothing but the events.
"""

from __future__ import annotations

from dataclasses import dataclass

from smsgw.adapters.events import EventPublisher
from smsgw.adapters.inbound import InboundStore
from smsgw.adapters.links import LinkStore
from smsgw.adapters.optouts import OptOutStore
from smsgw.adapters.packets import RawPacketStore
from smsgw.domain.events import Event
from smsgw.domain.numbers import mask_mobile
from smsgw.domain.optout import OptOutKeywords
from smsgw.observability import MetricUnit, logger, metrics
from smsgw.provider.push import Packet, PacketKind, parse_packet
from smsgw.services.announce import inbound_event, opt_out_event, report_events


@dataclass(frozen=True)
class PushOutcome:
    kind: PacketKind
    items: int
    settled: int
    skipped: int


class PushService:
    def __init__(
        self,
        links: LinkStore,
        packets: RawPacketStore,
        inbound: InboundStore,
        opt_outs: OptOutStore,
        events: EventPublisher,
        *,
        keywords: OptOutKeywords,
    ) -> None:
        self._links = links
        self._packets = packets
        self._inbound = inbound
        self._opt_outs = opt_outs
        self._events = events
        self._keywords = keywords

    def handle(self, body: bytes, *, content_type: str, source_ip: str) -> PushOutcome:
        """Store and announce a packet; raises ``PacketError`` for a body that is no packet."""
        try:
            packet = parse_packet(body, content_type)
        except ValueError:
            self._packets.store(body, kind="unreadable", source_ip=source_ip)
            raise
        self._packets.store(body, kind=packet.kind.value, source_ip=source_ip)
        if packet.skipped:
            logger.warning(
                "push items we could not read were kept raw only", extra={"skipped": packet.skipped}
            )
            metrics.add_metric(name="PushItemsUnreadable", unit=MetricUnit.Count, value=packet.skipped)
        if packet.kind is PacketKind.REPORTS:
            return self._reports_packet(packet)
        return self._inbound_packet(packet)

    def _reports_packet(self, packet: Packet) -> PushOutcome:
        recorded = self._links.record_reports(packet.reports)
        links = recorded.links
        # The early-report handshake (domain/reports.py): a report whose MsgId was not linked
        # yet beat the submit's answer; the worker announces it when it records the submit.
        announce = [r for r in (*recorded.newly, *recorded.repeated) if links[r.msg_id].request_id]
        self._events.publish(report_events(announce, links))
        for report in recorded.newly:
            metrics.add_metric(
                name="ReportsDelivered" if report.delivered else "ReportsFailed",
                unit=MetricUnit.Count,
                value=1,
            )
        logger.info(
            "reports stored",
            extra={
                "items": len(packet.reports),
                "settled": len(recorded.newly),
                "repeated": len(recorded.repeated),
            },
        )
        return PushOutcome(packet.kind, len(packet.reports), len(recorded.newly), packet.skipped)

    def _inbound_packet(self, packet: Packet) -> PushOutcome:
        events: list[Event] = []
        stored = 0
        for message in packet.inbound:
            stored += self._inbound.record_inbound(message)
            events.append(inbound_event(message))
            keyword = self._keywords.matches(message.content)
            if keyword:
                self._opt_outs.add_opt_out(message.mobile, keyword=keyword, source="mo")
                events.append(opt_out_event(message, keyword))
                logger.info(
                    "opt-out recorded", extra={"mobile": mask_mobile(message.mobile), "keyword": keyword}
                )
                metrics.add_metric(name="OptOuts", unit=MetricUnit.Count, value=1)
        self._events.publish(events)
        metrics.add_metric(name="InboundMessages", unit=MetricUnit.Count, value=len(packet.inbound))
        return PushOutcome(packet.kind, len(packet.inbound), stored, packet.skipped)
