"""Demo data: the catalogue and five days of a hotline's requests, in every state.

Everything goes through the real command path (the bus and the domain rules) with an
injected clock that walks from five days ago to now, so deadlines, overdue work and the
timelines look like those of a real service.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from domain.base import SYSTEM, Actor, DomainError, FixedClock
from domain.calendars import commands as calc
from domain.catalogue import commands as catc
from domain.requests import commands as c
from domain.requests.aggregate import request_id_for
from domain.work_orders import commands as woc
from infra.knowledge_data import KNOWLEDGE_FILE, load_articles, read_articles
from infra.runtime import Hotline
from infra.settings import Settings
from telephony_adapter.ivr.demo import publish_demo_flows

CITIZENS = [
    {"name": "Mario Rossi", "phone": "+39 06 1234 5678", "email": "mario.rossi@example.it", "language": "it"},
    {"name": "Giulia Bianchi", "phone": "+39 347 555 0101", "language": "it"},
    {"name": "王芳", "phone": "+86 138 0013 8000", "language": "zh"},
    {"name": "李伟", "phone": "+86 139 1234 5678", "email": "liwei@example.cn", "language": "zh"},
    {"name": "فاطمة الزهراء", "phone": "+971 50 123 4567", "language": "ar"},
    {"name": "أحمد المنصوري", "phone": "+971 55 765 4321", "email": "ahmed@example.ae", "language": "ar"},
    {"name": "John Smith", "phone": "+1 202 555 0143", "email": "john.smith@example.com", "language": "en"},
    {"name": "Aisha Khan", "phone": "+44 20 7946 0958", "language": "en"},
]
CASES: list[tuple[str, str, str, str, dict[str, Any]]] = [
    ("pothole", "action", "complaint", "Deep pothole in front of number 12, cars swerve into the bike lane", {"size": "large"}),
    ("streetlight-out", "action", "complaint", "路灯已经三天不亮了，晚上很危险", {"pole_number": "A-117"}),
    (
        "appliance-removal",
        "action",
        "application",
        "Ritiro di un frigorifero vecchio",
        {"appliance_type": "fridge", "pickup_address": "Via Roma 10"},
    ),
    ("missed-collection", "action", "complaint", "لم يتم جمع النفايات منذ أسبوع", {"bin_type": "general"}),
    ("illegal-dumping", "action", "complaint", "Mattresses dumped behind the school", {}),
    ("bus-complaint", "action", "complaint", "Bus 64 skipped the stop twice this morning", {"line": "64"}),
    ("benefit-application", "action", "application", "申请低保，家里四口人", {"household_size": 4}),
]
# What each citizen says, in their own language: a request's description is in the
# language it is recorded with (the knowledge suggestions search it in that language, and
# the reports group it by it). CASES' own text is one of these.
DESCRIPTIONS: dict[str, dict[str, str]] = {
    "pothole": {
        "en": "Deep pothole in front of number 12, cars swerve into the bike lane",
        "it": "Buca profonda davanti al civico 12, le auto invadono la pista ciclabile",
        "zh": "12号门前有个很深的坑，汽车都绕到自行车道上",
        "ar": "حفرة عميقة أمام المبنى رقم 12، والسيارات تنحرف إلى مسار الدراجات",
    },
    "streetlight-out": {
        "en": "The streetlight has been out for three days, it is dangerous at night",
        "it": "Il lampione è spento da tre giorni, di notte è pericoloso",
        "zh": "路灯已经三天不亮了，晚上很危险",
        "ar": "إنارة الشارع معطلة منذ ثلاثة أيام، والمكان خطير في الليل",
    },
    "appliance-removal": {
        "en": "Pickup of an old fridge",
        "it": "Ritiro di un frigorifero vecchio",
        "zh": "预约清运一台旧冰箱",
        "ar": "إزالة ثلاجة قديمة",
    },
    "missed-collection": {
        "en": "The rubbish has not been collected for a week",
        "it": "I rifiuti non vengono raccolti da una settimana",
        "zh": "垃圾已经一个星期没人收了",
        "ar": "لم يتم جمع النفايات منذ أسبوع",
    },
    "illegal-dumping": {
        "en": "Mattresses dumped behind the school",
        "it": "Materassi abbandonati dietro la scuola",
        "zh": "学校后面有人乱扔床垫",
        "ar": "فرشات مرمية خلف المدرسة",
    },
    "bus-complaint": {
        "en": "Bus 64 skipped the stop twice this morning",
        "it": "Il bus 64 ha saltato la fermata due volte stamattina",
        "zh": "64路公交车今天早上两次不停站",
        "ar": "الحافلة 64 لم تتوقف في المحطة مرتين هذا الصباح",
    },
    "benefit-application": {
        "en": "Application for income support, a household of four",
        "it": "Domanda di sussidio, famiglia di quattro persone",
        "zh": "申请低保，家里四口人",
        "ar": "طلب إعانة اجتماعية، أسرة من أربعة أفراد",
    },
}
# Where the demo's problems are (Rome), each report a few tens of metres from the spot: reports
# of one problem cluster as a city's do, so the desk's nearby open work orders have something to show.
PLACES: list[tuple[str, str, float, float]] = [
    ("Via Nazionale 1", "Centro", 41.9009, 12.4936),
    ("Piazza Venezia", "Centro", 41.8960, 12.4823),
    ("Viale di Trastevere 60", "Trastevere", 41.8834, 12.4719),
    ("Via Tuscolana 200", "Appio-Latino", 41.8772, 12.5224),
    ("Via Nomentana 150", "Nomentano", 41.9160, 12.5150),
    ("Piazza Bologna", "Nomentano", 41.9130, 12.5200),
]
# Information requests, per language: the same four questions in each (an operator
# searches the knowledge base in the caller's language, with the caller's words).
QUESTIONS: dict[str, list[str]] = {
    "en": [
        "What are the opening hours of the registry office?",
        "What documents do I need for an ID card?",
        "What are the rules for sorting rubbish?",
        "When is the rubbish collected in our neighbourhood?",
    ],
    "it": [
        "Quali sono gli orari dell'ufficio anagrafe?",
        "Quali documenti servono per la carta d'identità?",
        "Come si fa la raccolta differenziata dei rifiuti?",
        "Quando passa la raccolta dei rifiuti nel nostro quartiere?",
    ],
    "zh": [
        "户籍窗口的办公时间是什么？",
        "办身份证需要什么材料？",
        "垃圾分类的规定是什么？",
        "我们小区什么时候收垃圾？",
    ],
    "ar": [
        "ما هي مواعيد عمل مكتب السجل المدني؟",
        "ما هي الوثائق المطلوبة لبطاقة الهوية؟",
        "ما هي قواعد فرز النفايات؟",
        "ما هي مواعيد جمع النفايات في حيّنا؟",
    ],
}
# What citizens type on the portal: searched with no language given (the search guesses it
# from the script, and tries it and en for Latin text), so it is recorded as found.
PORTAL_QUERIES = [*(q for qs in QUESTIONS.values() for q in qs), "bollo auto scaduto", "parking permit renewal", "噪音投诉"]
AGENT = Actor("op-anna", "agent", "Anna (operator)")
SUPERVISOR = Actor("sup-li", "supervisor", "Li (supervisor)")
CONTROL = Actor("ctrl-office", "control_office", "Control office")


def _department(dep: str) -> Actor:
    return Actor(f"dept-{dep}", "department", dep, departments=(dep,))


# One sign-in per staff role (README: "Demo users"); all with the password DEMO_PASSWORD.
DEMO_PASSWORD = "hotline-demo"
DEMO_STAFF: tuple[tuple[str, str, list[str], list[str]], ...] = (
    ("op-anna", "Anna (operator)", ["agent"], []),
    ("expert-marco", "Marco (expert seat)", ["expert"], []),
    ("sup-li", "Li (supervisor)", ["supervisor"], []),
    ("dept-transport", "Transport department", ["department"], ["transport"]),
    ("dept-environment", "Environment department", ["department"], ["environment"]),
    ("ctrl-office", "Control office", ["control_office"], []),
    ("analyst-sara", "Sara (analyst)", ["analyst"], []),
    ("auditor-omar", "Omar (auditor)", ["auditor"], []),
    ("admin", "Administrator", ["administrator"], []),
)


def enrol_demo_staff(hotline: Hotline) -> int:
    from pydantic import SecretStr

    from domain.identity.commands import EnrollStaff

    for username, name, roles, departments in DEMO_STAFF:
        cmd = EnrollStaff(username=username, name=name, roles=roles, departments=departments, password=SecretStr(DEMO_PASSWORD))
        hotline.bus.execute(cmd, SYSTEM)
    return len(DEMO_STAFF)


# The contact center's shifts (local time of the jurisdiction) and who works them. Shift
# agents are demo users too (password DEMO_PASSWORD): the shift on duty when the demo
# ends stays signed in, so a newcomer can sign in as one of them and take the next call.
SHIFTS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("early", "07:00", "15:00", ("Bruno Conti", "Chiara Esposito", "Davide Greco", "Elena Marino", "Fabio Ricci", "Gao Min")),
    ("late", "14:00", "22:00", ("Hana Saleh", "Irene Gallo", "Jun Wu", "Karim Haddad", "Luca Romano", "Marta Fontana")),
    ("night", "22:00", "07:00", ("Nadia Costa", "Omar Farouk")),
)
# Calls per hour in each local hour, as a share of the peak: the hotline answers round
# the clock, busy from mid-morning to late afternoon.
DEMO_SHAPE = {
    **{h: 0.04 for h in range(24)},
    7: 0.3, 8: 0.6, 9: 0.9, 10: 1.0, 11: 0.95, 12: 0.7, 13: 0.6, 14: 0.8, 15: 0.9, 16: 0.8, 17: 0.6, 18: 0.45, 19: 0.3, 20: 0.2, 21: 0.12,
}  # fmt: skip
# Peak calls per hour by queue (kept small so the demo loads in about a minute).
DEMO_PEAKS = {"general": 10, "tax": 3, "environment": 3, "chat": 5, "urgent": 1}
REQUESTS_PER_DAY = 22


@dataclass(frozen=True)
class Beat:
    """A request of the first day whose course the story fixes rather than chance leaves:
    what every demo shows, whatever the hour it is loaded (chance alone once left no late
    closure, and a report at a misleading 100 % on time)."""

    course: str
    urgency: str
    fate: float  # the course it takes: see _register, _dispatch and _accept
    late: bool = False


BEATS = (
    *(Beat("worked on, finished after its deadline and closed late", "urgent", fate, late=True) for fate in (0.6, 0.7, 0.8)),
    Beat("returned twice by its department, awaiting the control office's ruling", "normal", 0.21),
    Beat("dispatched, never accepted: overdue, escalated by the timers", "urgent", 0.1),
)
# What the citizen reads (replies) or writes (ratings, reopenings), in the request's
# language; notes between staff stay in the hotline's working language.
CITIZEN_TEXTS: dict[str, dict[str, str]] = {
    "answered": {
        "it": "Risposto al telefono con la scheda della base di conoscenza",
        "en": "Answered on the phone from the knowledge base",
        "zh": "已根据知识库在电话中答复",
        "ar": "تمت الإجابة هاتفياً من قاعدة المعرفة",
    },
    "started": {"it": "I lavori sono iniziati", "en": "Work has started", "zh": "工作已经开始", "ar": "بدأ العمل"},
    "crew": {"it": "In attesa della squadra", "en": "Waiting for the crew", "zh": "正在等待施工队", "ar": "بانتظار فريق العمل"},
    "fixed": {
        "it": "Il problema è stato risolto. Grazie per la segnalazione.",
        "en": "The problem has been fixed. Thank you for reporting it.",
        "zh": "问题已经解决。感谢您的反映。",
        "ar": "تم إصلاح المشكلة. شكراً لإبلاغكم.",
    },
    "back": {
        "it": "Il problema si è ripresentato",
        "en": "The problem is back",
        "zh": "问题又出现了",
        "ar": "عادت المشكلة من جديد",
    },
    "rated-5": {"it": "Servizio rapido, grazie", "en": "Quick service, thank you", "zh": "处理很快，谢谢", "ar": "خدمة سريعة، شكراً"},
    "rated-4": {
        "it": "Risolto, anche se ci è voluto un po'",
        "en": "Fixed, though it took a while",
        "zh": "解决了，不过等了一段时间",
        "ar": "تم الحل، وإن استغرق بعض الوقت",
    },
    "rated-3": {"it": "Risolto, ma in ritardo", "en": "Fixed, but late", "zh": "解决了，但是晚了", "ar": "تم الحل، لكن متأخراً"},
    "rated-2": {
        "it": "Troppo lento, ho dovuto richiamare",
        "en": "Too slow, I had to call again",
        "zh": "太慢了，我不得不再次打电话",
        "ar": "بطيء جداً، اضطررت إلى الاتصال مرة أخرى",
    },
}
SELF_SERVICE_PER_DAY = 8  # knowledge searches on the citizen portal


def shift_staff() -> list[tuple[str, str, str]]:
    """(username, name, shift) of every shift agent."""
    return [(f"agent-{shift}-{i + 1}", name, shift) for shift, _, _, names in SHIFTS for i, name in enumerate(names)]


def load_demo(
    settings: Settings, *, only_if_empty: bool, console: Any = None, days: float = 5, seed: int = 12345, now: datetime | None = None
) -> dict[str, int]:
    """Five days of a hotline's life ending now: calls and chats through the real router
    in every working hour, requests whose lifecycles take minutes to days, the SLA timers
    firing as they would have, and the shift on duty now signed in.

    ``now``: where the story ends, if not now (a test that wants the same traffic whatever
    the hour it runs at ends it at a past noon); it must not be in the future."""
    if now is not None and now > datetime.now(UTC):
        raise ValueError("the demo's story cannot end in the future")
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    clock = FixedClock(now - timedelta(days=days))
    hotline = Hotline.start(settings, clock)
    # The read models catch up in batches (before each timer round and at the end), not
    # after every command: the demo loads several times faster.
    hotline.bus.after_commit = None
    try:
        if only_if_empty and hotline.store.max_position() > 0:
            if console:
                console.print("demo: the store already holds events; nothing loaded")
            return {"events": 0}
        counts = _reference_data(hotline)
        story = DemoStory(hotline, clock, now, random.Random(seed), settings.time_zone)
        if console:
            console.print(f"demo: {days} days of calls, chats and requests up to {now.isoformat()} …")
        counts.update(story.run(days, seed))
        for hook in DEMO_HOOKS:
            hook(hotline, clock, now, console)
        if hotline.projector:
            hotline.projector.catch_up()
        counts["events"] = hotline.store.max_position()
        if console:
            console.print(f"demo: {counts}")
        return counts
    finally:
        hotline.close()


# Later capabilities (contact-center traffic, analytics …) add demo data here:
# each hook is called with (hotline, clock, now, console) after the requests are loaded.
DEMO_HOOKS: list[Any] = []
DEMO_HOOKS.append(publish_demo_flows)  # the IVR's staffed hours and voice menu (infra/data/ivr/)


def _reference_data(hotline: Hotline) -> dict[str, int]:
    from pathlib import Path

    from pydantic import SecretStr

    from domain.identity.commands import EnrollStaff

    data = Path(__file__).resolve().parent.parent / "infra" / "data"
    run = hotline.bus.execute
    run(catc.ImportCatalogue(document=yaml.safe_load((data / "catalogue.yaml").read_text("utf-8"))), SYSTEM)
    run(calc.ImportCalendars(document=yaml.safe_load((data / "calendars.yaml").read_text("utf-8"))), SYSTEM)
    staff = enrol_demo_staff(hotline)
    for username, name, _shift in shift_staff():
        run(EnrollStaff(username=username, name=name, roles=["agent"], departments=[], password=SecretStr(DEMO_PASSWORD)), SYSTEM)
        staff += 1
    articles = len(load_articles(hotline, read_articles(KNOWLEDGE_FILE), SUPERVISOR))
    return {"staff": staff, "articles": articles}


Step = tuple[datetime, Callable[[], None]]


class DemoStory:
    """The requests of the demo's days, each a sequence of steps at their own times,
    played in time order together with the contact center's calls (the simulator's
    clock is the one clock: nothing is ever written out of order or in the future)."""

    def __init__(self, hotline: Hotline, clock: FixedClock, now: datetime, rnd: random.Random, time_zone: str) -> None:
        self.hotline, self.clock, self.now, self.rnd = hotline, clock, now, rnd
        self.zone = ZoneInfo(time_zone)
        self.counts = {
            "requests": 0,
            "closed": 0,
            "reopened": 0,
            "work_orders": 0,
            "duplicates": 0,
            "awaiting_ruling": 0,
            "timer_events": 0,
        }
        # "<problem code>@<address>" -> an open work order there (what a duplicate links to).
        self.open_orders: dict[str, str] = {}
        self.running_late: set[str] = set()  # references whose work overruns on purpose
        self.language_of: dict[str, str] = {}  # reference -> the citizen's language, as registered
        self.sim: Any = None
        self._last_question = QUESTIONS["en"][0]
        self.refused: list[str] = []

    # ------------------------------------------------------------------ the run
    def run(self, days: float, seed: int) -> dict[str, int]:
        from consumers.router import Router
        from consumers.timers import TimerProcess
        from telephony_adapter.simulator import Shift, SimConfig, Simulator

        start = self.clock.now()
        end = self.now - timedelta(minutes=1)
        config = SimConfig.default_day(hours=(end - start).total_seconds() / 3600, seed=seed)
        for q in config.queues:
            q.peak_per_hour, q.shape = DEMO_PEAKS[q.queue_id], DEMO_SHAPE
            if q.queue_id == "environment":  # complaints wait little before the general queue takes them
                q.config["max_wait_seconds"] = 25
        config.start, config.time_zone, config.close_at_end = start, self.zone.key, True
        config.day_factor = lambda d: {5: 0.5, 6: 0.3}.get(d.weekday(), 1.0)
        config.known_callers, config.known_share = [who["phone"] for who in CITIZENS], 0.25
        config.shifts = [
            Shift(
                name,
                time.fromisoformat(begins),
                time.fromisoformat(ends),
                [u for u, _, s in shift_staff() if s == name],
                {u: n for u, n, s in shift_staff() if s == name},
            )
            for name, begins, ends, _ in SHIFTS
        ]
        self.sim = Simulator(
            self.hotline.store,
            self.hotline.bus,
            self.clock,
            config,
            router=Router(self.hotline.store, self.hotline.bus, time_zone=self.zone.key),
        )
        timers = TimerProcess(self.hotline)
        projector = self.hotline.projector

        def timer_round() -> None:
            if projector:
                projector.catch_up()  # the timers read the SLA timer table
            self.counts["timer_events"] += timers.tick()

        at = start + timedelta(minutes=15)
        while at < end:
            self.sim.call_at(at, timer_round)
            at += timedelta(minutes=15)
        for _ in range(int(days * REQUESTS_PER_DAY)):
            self._plan_request(start, end)
        first_day = min(end, start + timedelta(days=1))
        for beat in BEATS:
            self._plan_request(start, first_day, beat)
        for _ in range(int(days * SELF_SERVICE_PER_DAY)):
            self._at(start + timedelta(seconds=self.rnd.uniform(0, (end - start).total_seconds())), self._self_service)
        report = self.sim.run()
        self.counts["contacts"] = sum(q["arrived"] for q in report.queues.values())
        self.counts["contact_center_events"] = report.events
        if self.refused:
            self.counts["steps_refused"] = len(self.refused)
        return self.counts

    def _at(self, when: datetime, action: Callable[[], object]) -> None:
        """Schedule a step; steps that would fall after now have not happened yet."""
        if when < self.now - timedelta(minutes=1):
            self.sim.call_at(when, self._guarded(action))

    def _guarded(self, action: Callable[[], object]) -> Callable[[], None]:
        def step() -> None:
            try:
                action()
            except DomainError as exc:  # e.g. a timer escalated the case first
                self.refused.append(f"{getattr(action, '__name__', action)}: {exc.message}")

        return step

    def _run(self, cmd: Any, actor: Actor) -> dict[str, Any]:
        return self.hotline.bus.execute(cmd, actor).result

    def _step(self, when: datetime, cmd: Any, actor: Actor) -> None:
        """Issue ``cmd`` as ``actor`` at ``when``."""
        self._at(when, lambda: self._run(cmd, actor))

    # ------------------------------------------------------------------ one request
    def _working_time(self, start: datetime, end: datetime) -> datetime:
        """A moment in office hours (08:30-18:00 local, Monday to Friday; a fifth of the
        requests come in by web or email at any time)."""
        for _ in range(50):
            t = start + timedelta(seconds=self.rnd.uniform(0, (end - start).total_seconds()))
            local = t.astimezone(self.zone)
            if local.weekday() < 5 and time(8, 30) <= local.time() <= time(18, 0):
                return t
        return t

    def _later(self, t: datetime, low_minutes: float, high_minutes: float) -> datetime:
        return t + timedelta(minutes=self.rnd.uniform(low_minutes, high_minutes))

    def _plan_request(self, start: datetime, end: datetime, beat: Beat | None = None) -> None:
        rnd = self.rnd
        who = rnd.choice(CITIZENS)
        anytime = rnd.random() < 0.2
        t = start + timedelta(seconds=rnd.uniform(0, (end - start).total_seconds())) if anytime else self._working_time(start, end)
        contact = c.Contact(name=who["name"], phone=who["phone"], email=who.get("email"))
        if beat is None and rnd.random() < 1 / 6:
            self._at(t, lambda: self._information(who, contact, t))
            return
        code, kind, subtype, _text, collected = rnd.choice(CASES)
        body = {
            "kind": kind,
            "subtype": subtype,
            "channel": rnd.choice(["web", "email"]) if anytime else rnd.choice(["phone", "phone", "web", "email", "sms", "chat"]),
            "description": DESCRIPTIONS[code][who["language"]],
            "contact": contact,
            "language": who["language"],
            "urgency": beat.urgency if beat else rnd.choices(["normal", "urgent", "control"], [6, 2, 2])[0],
            "problem_code": code,
            "collected": collected,
            "location": self._place(),
        }
        fate = beat.fate if beat else rnd.random()
        self._at(t, lambda: self._register(body, code, fate, t, beat))

    def _place(self) -> dict[str, Any]:
        address, district, lat, lon = self.rnd.choice(PLACES)
        # Within about 90 m of the spot (0.0008° of latitude).
        return {
            "address": address,
            "district": district,
            "lat": lat + self.rnd.uniform(-8e-4, 8e-4),
            "lon": lon + self.rnd.uniform(-8e-4, 8e-4),
        }

    def _information(self, who: dict[str, Any], contact: c.Contact, t: datetime) -> None:
        r = self._run(
            c.RegisterRequest.model_validate(
                {
                    "kind": "information",
                    "subtype": "consultation",
                    "channel": self.rnd.choice(["phone", "web", "chat"]),
                    "description": self._question(who["language"]),
                    "contact": contact,
                    "language": who["language"],
                }
            ),
            AGENT,
        )
        self.counts["requests"] += 1
        ref = r["reference"]
        self.language_of[ref] = who["language"]
        self._answer_from_knowledge(r["id"], self._last_question, who["language"])
        replied = self._later(t, 2, 12)
        answer = c.FinalReply(ref=ref, message=self._in_their_language(ref, "answered"), channel="phone")
        self._at(replied, lambda: self._run(answer, AGENT))
        self._at(self._later(replied, 1, 30), lambda: self._close(ref))

    def _question(self, language: str) -> str:
        self._last_question = self.rnd.choice(QUESTIONS[language])
        return self._last_question

    def _search(self, query: str, language: str | None, actor: Actor, request_id: str | None = None) -> tuple[str, list[Any]]:
        """A knowledge search as the desk or the portal makes it: the real index, recorded."""
        from domain.knowledge import commands as kc
        from projections import knowledge as kb

        if self.hotline.projector:
            self.hotline.projector.catch_up()
        with self.hotline.read_store.engine.connect() as conn:
            results, searched = kb.search(conn, query, language, 5)
        shown = [kc.ShownArticle(article_id=r["id"], revision=r["revision"], rank=i + 1, score=r["score"]) for i, r in enumerate(results)]
        channel = "self_service" if actor.role == "citizen" else "agent"
        cmd = kc.RecordSearch(query=query, language=searched, channel=channel, shown=shown, request_id=request_id)  # type: ignore[arg-type]
        return self._run(cmd, actor)["search_id"], results

    def _answer_from_knowledge(self, request_id: str, question: str, language: str) -> None:
        """The operator looks the question up and, mostly, answers from the first article."""
        from domain.knowledge import commands as kc

        search_id, results = self._search(question, language, AGENT, request_id)
        self.counts["knowledge_searches"] = self.counts.get("knowledge_searches", 0) + 1
        if results and self.rnd.random() < 0.75:
            self._run(kc.RecordUsedToAnswer(search_id=search_id, article_id=results[0]["id"], request_id=request_id), AGENT)

    def _self_service(self) -> None:
        """A citizen searches the portal; some find their answer and file nothing."""
        from api.auth import ANONYMOUS
        from domain.knowledge import commands as kc

        question = self.rnd.choice(PORTAL_QUERIES)
        search_id, results = self._search(question, None, ANONYMOUS)
        self.counts["knowledge_searches"] = self.counts.get("knowledge_searches", 0) + 1
        if results and self.rnd.random() < 0.5:
            self._run(kc.RecordArticleOpened(search_id=search_id, article_id=results[0]["id"]), ANONYMOUS)
            if self.rnd.random() < 0.6:
                self._run(kc.RecordDeflection(search_id=search_id, article_id=results[0]["id"]), ANONYMOUS)

    def _register(self, body: dict[str, Any], code: str, fate: float, t: datetime, beat: Beat | None) -> None:
        r = self._run(c.RegisterRequest.model_validate(body), AGENT)
        self.counts["requests"] += 1
        ref = r["reference"]
        self.language_of[ref] = body["language"]
        if beat and beat.late:
            self.running_late.add(ref)
        spot = self._spot(ref)
        if beat is None and spot in self.open_orders and self.rnd.random() < 0.5:
            order = self.open_orders[spot]
            self._at(self._later(t, 1, 10), lambda: self._duplicate(ref, order))
            return
        if fate < 0.08:
            return  # still waiting for dispatch
        self._at(self._later(t, 3, 90), lambda: self._dispatch(ref, fate))

    def _spot(self, ref: str) -> str:
        """The same problem at the same place: where a second report is a duplicate."""
        request = self.hotline.store.read_reference(request_id_for(ref))
        return f"{request.problem_code}@{(request.location or {}).get('address')}"

    def _duplicate(self, ref: str, order: str) -> None:
        self._run(woc.LinkDuplicate(ref=ref, work_order_id=order), AGENT)
        self.counts["duplicates"] += 1

    def _dispatch(self, ref: str, fate: float) -> None:
        d = self._run(c.Dispatch(ref=ref), AGENT)
        dep = _department_of(self.hotline, ref)
        t = self.clock.now()
        if fate < 0.16:
            return  # dispatched, never accepted: these go overdue and escalate
        if fate < 0.23:
            self._at(self._later(t, 30, 600), lambda: self._returned(ref, dep, fate))
            return
        due = datetime.fromisoformat(d["due_at"])
        self._at(self._later(t, 10, 360), lambda: self._accept(ref, dep, fate, due))

    def _returned(self, ref: str, dep: str, fate: float) -> None:
        self._run(c.ReturnToDispatcher(ref=ref, department_id=dep, reason="Not our competence: private road"), _department(dep))
        t = self.clock.now()

        def again() -> None:
            self._run(c.Dispatch(ref=ref), AGENT)
            self._at(self._later(self.clock.now(), 30, 300), second_return)

        def second_return() -> None:
            self._run(c.ReturnToDispatcher(ref=ref, department_id=dep, reason="Still not ours"), _department(dep))
            self.counts["awaiting_ruling"] += 1
            if fate < 0.2:
                self._at(self._later(self.clock.now(), 60, 1440), ruling)

        def ruling() -> None:
            self._run(c.RuleOwnership(ref=ref, department_id=dep, reason="Municipal road register lists it as public"), CONTROL)
            self.counts["awaiting_ruling"] -= 1

        self._at(self._later(t, 20, 240), again)

    def _accept(self, ref: str, dep: str, fate: float, due: datetime) -> None:
        self._run(c.Accept(ref=ref, department_id=dep), _department(dep))
        wo = self._run(woc.CreateWorkOrder(ref=ref), AGENT)
        self.counts["work_orders"] += 1
        code = self.hotline.store.read_reference(request_id_for(ref)).problem_code
        if code:
            self.open_orders[self._spot(ref)] = wo["id"]
        t = self.clock.now()
        if fate < 0.35:
            if self.rnd.random() < 0.5:
                self._at(
                    self._later(t, 30, 600),
                    lambda: self._run(c.Supervise(ref=ref, reason="Repeated complaints from the same street"), SUPERVISOR),
                )
            if self.rnd.random() < 0.5:
                self._at(self._later(t, 60, 900), lambda: self._extend(ref, dep, due))
            return  # work not started yet
        # Most work takes hours to a couple of days; a quarter runs late.
        started = self._later(t, 60, 1200)
        late = self.rnd.random() < 0.25 or ref in self.running_late
        finished = (
            due + timedelta(hours=self.rnd.uniform(2, 30))
            if late
            else self._later(started, 60, max(90.0, (due - started).total_seconds() / 60 * 0.8))
        )
        self._at(
            started,
            lambda: self._run(
                woc.StartWorkOrder(order_id=wo["id"], crew=self.rnd.choice(["Crew 1", "Crew 3", "Crew 7"])), _department(dep)
            ),
        )
        if fate < 0.5:
            self._at(
                self._later(started, 30, 600),
                lambda: self._run(
                    c.InterimReply(
                        ref=ref,
                        message=self._in_their_language(ref, "started"),
                        delay_reason=self._in_their_language(ref, "crew"),
                        expected_at=self.clock.now() + timedelta(days=2),
                    ),
                    AGENT,
                ),
            )
            return
        self._at(finished, lambda: self._finish(ref, dep, wo["id"], code, fate))

    def _extend(self, ref: str, dep: str, due: datetime) -> None:
        if self.clock.now() >= due:
            return  # too late to ask
        self._run(
            c.RequestExtension(ref=ref, requested_due_at=due + timedelta(days=2), reason="Spare parts on order", department_id=dep),
            _department(dep),
        )
        self._at(
            self._later(self.clock.now(), 20, 300),
            lambda: self._run(c.DecideExtension(ref=ref, approve=True, comment="Granted once"), SUPERVISOR),
        )

    def _finish(self, ref: str, dep: str, order: str, code: str | None, fate: float) -> None:
        self._run(woc.CompleteWorkOrder(order_id=order, outcome="Fixed on site"), _department(dep))
        if code and self.open_orders.get(self._spot(ref)) == order:
            del self.open_orders[self._spot(ref)]
        replied = self._later(self.clock.now(), 10, 240)

        def reply() -> None:
            self._run(c.FinalReply(ref=ref, message=self._in_their_language(ref, "fixed")), AGENT)
            self._run(c.Resolve(ref=ref, resolution="Fixed by the crew"), AGENT)
            self._at(self._later(self.clock.now(), 30, 1440), lambda: self._close(ref, rate=True, reopen=fate > 0.93))

        self._at(replied, reply)

    def _in_their_language(self, ref: str, text: str) -> str:
        return CITIZEN_TEXTS[text].get(self.language_of.get(ref, "en")) or CITIZEN_TEXTS[text]["en"]

    def _close(self, ref: str, *, rate: bool = False, reopen: bool = False) -> None:
        self._run(c.Close(ref=ref), AGENT)
        self.counts["closed"] += 1
        if not rate:
            return
        owner = self.hotline.store.read_reference(request_id_for(ref)).citizen_id
        citizen = Actor(f"citizen:{owner}", "citizen", citizen_id=str(owner))
        t = self.clock.now()
        if reopen:  # the citizen says it is not fixed: back to work
            self._at(self._later(t, 60, 1440), lambda: self._reopen(ref, citizen))
        elif self.rnd.random() < 0.7:
            score = self.rnd.choice([3, 4, 5, 5, 2])
            comment = self._in_their_language(ref, f"rated-{score}")
            self._at(self._later(t, 5, 600), lambda: self._run(c.Rate(ref=ref, score=score, comment=comment), citizen))

    def _reopen(self, ref: str, citizen: Actor) -> None:
        self._run(c.Reopen(ref=ref, reason=self._in_their_language(ref, "back")), citizen)
        self.counts["reopened"] += 1
        self.counts["closed"] -= 1
        self._at(self._later(self.clock.now(), 10, 120), lambda: self._run(c.Dispatch(ref=ref), AGENT))


def _department_of(hotline: Hotline, ref: str) -> str:
    from domain.requests.aggregate import ServiceRequest, request_id_for

    req: ServiceRequest = hotline.store.repository.get(request_id_for(ref))
    assert req.department_id is not None
    return req.department_id
