"""What to practise next and how practice is going, read from the ledger.

``review_plan`` builds the 复习 plan: the questions that are due (the ones whose points were missed most first),
then the weakest topics, within the minutes the candidate picked; the same history always gives the same plan.
``progress`` is what the progress page and ``interviewer progress`` show.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta

from interviewer.knowledge.bank import Plan, Question, StagePlan, Text
from interviewer.messages import short
from interviewer.practice.ledger import Ledger, utc

REVIEWABLE = ("technical", "drill")


def _missed_counts(ledger: Ledger) -> Counter:
    """How often each question's points were missed (covered < 0.75), by main question id."""
    rows = ledger.rows("SELECT item, covered FROM points")
    return Counter(r["item"].split("/")[0].split("#")[0] for r in rows if r["covered"] < 0.75)


def review_questions(ledger: Ledger, bank: dict[str, Question], minutes: int, now: datetime) -> list[tuple[str, str]]:
    """(question id, why) in the order to ask them, within ``minutes``."""
    now = utc(now)
    missed = _missed_counts(ledger)
    due: dict[str, datetime] = {}
    for c in ledger.cards():
        qid = c["question_id"]
        if qid in bank and bank[qid].stage in REVIEWABLE and datetime.fromisoformat(c["due"]) <= now:
            due[qid] = min(due.get(qid, now), datetime.fromisoformat(c["due"]))
    chosen: list[tuple[str, str]] = [(qid, f"到期复习（{missed[qid]} 个要点曾漏答）" if missed[qid] else "到期复习")
                                     for qid in sorted(due, key=lambda q: (-missed[q], due[q], q))]
    scores: dict[str, list[int]] = defaultdict(list)
    for r in ledger.rows("SELECT topic, score FROM turns WHERE score IS NOT NULL"):
        scores[r["topic"]].append(r["score"])
    weak = sorted(scores, key=lambda t: (sum(scores[t]) / len(scores[t]), t))
    asked = {r["question_id"] for r in ledger.rows("SELECT DISTINCT question_id FROM turns")}
    for topic in weak:
        for q in sorted((q for q in bank.values() if q.topic == topic and q.stage in REVIEWABLE), key=lambda q: (q.id in asked, q.difficulty, q.id)):
            if q.id not in {c for c, _ in chosen}:
                chosen.append((q.id, f"薄弱话题（平均 {round(sum(scores[topic]) / len(scores[topic]))} 分）"))
                break
    budget, total, out = minutes * 60, 0, []
    for qid, why in chosen:
        if total + bank[qid].time_budget_s > budget and out:
            break
        out.append((qid, why))
        total += bank[qid].time_budget_s
    return out


def reasons(bank: dict[str, Question], picked: list[tuple[str, str]]) -> list[str]:
    """Why each question was chosen, as the panel's checklist shows it."""
    return [f"{short(bank[q].question.zh, 24)} — {why}" for q, why in picked]


def review_plan(ledger: Ledger, bank: dict[str, Question], minutes: int, now: datetime) -> tuple[Plan, list[tuple[str, str]]]:
    """The 复习 plan (one stage) and why each question is in it; empty history → the seed's technical questions."""
    picked = review_questions(ledger, bank, minutes, now) or [(q, "还没有练习记录：从 Day 7 的技术题开始")
                                                              for q in ("kv_cache", "paged_attention", "continuous_batching")]
    stage = StagePlan(id="technical", title=Text(zh=f"复习（{minutes} 分钟）", en=f"Review ({minutes} min)"), budget_s=minutes * 60,
                      questions=[q for q, _ in picked], checklist=reasons(bank, picked))
    pid = f"review_{utc(now).strftime('%Y%m%d%H%M')}_{minutes}"
    return Plan(id=pid, title=Text(zh=f"复习：到期的题和薄弱话题（{minutes} 分钟）", en=f"Review: due items and weak topics ({minutes} min)"),
                answer_budget_s=120, follow_up_budget=1, stages=[stage]), picked


def progress(ledger: Ledger, bank: dict[str, Question], now: datetime) -> dict:
    """Mastery per topic over time, what is due today and this week, the points missed most with their notes,
    streak and minutes practised, and the self-rating vs grader agreement over time."""
    now = utc(now)
    turns = ledger.rows("SELECT * FROM turns ORDER BY at")
    by_day_topic: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for t in turns:
        by_day_topic[t["at"][:10]][t["topic"]].append(t["score"] or 0)
    mastery = [{"day": day, "topic": topic, "score": round(sum(v) / len(v))} for day, topics in sorted(by_day_topic.items())
               for topic, v in sorted(topics.items())]
    cards = [c for c in ledger.cards("question") if c["question_id"] in bank]
    due_today = [c["item"] for c in cards if datetime.fromisoformat(c["due"]) <= now + timedelta(days=1)]
    due_week = [c["item"] for c in cards if datetime.fromisoformat(c["due"]) <= now + timedelta(days=7)]
    missed = Counter()
    notes = {}
    for r in ledger.rows("SELECT item, point, note, covered FROM points"):
        if r["covered"] < 0.75:
            missed[r["item"]] += 1
            notes[r["item"]] = (r["point"], r["note"])
    days = {t["at"][:10] for t in turns}
    day = now.date() if now.date().isoformat() in days else now.date() - timedelta(days=1)
    streak = 0
    while day.isoformat() in days:  # consecutive days with practice, ending today (or yesterday)
        streak += 1
        day -= timedelta(days=1)
    rated = [t for t in turns if t["self_rating"]]
    agreement = [{"day": d, "agree": round(sum(t["self_rating"] == t["band"] for t in g) / len(g), 2), "n": len(g)}
                 for d in sorted({t["at"][:10] for t in rated}) for g in [[t for t in rated if t["at"][:10] == d]]]
    return {"sessions": len({t["session_id"] for t in turns}), "answers": len(turns),
            "minutes": round(sum(t["seconds"] or 0 for t in turns) / 60, 1), "streak_days": streak,
            "mastery": mastery, "due_today": due_today, "due_this_week": due_week,
            "most_missed": [{"item": i, "misses": n, "point": notes[i][0], "note": notes[i][1]} for i, n in missed.most_common(10)],
            "self_vs_grader": agreement}


def _variant_families(bank: dict[str, Question]) -> dict[str, list[str]]:
    """Each authored numeric question's generated variants (``knowledge.bank.variants_of``), in bank order."""
    out: dict[str, list[str]] = {}
    for q in bank.values():
        if q.variant_of:
            out.setdefault(q.variant_of, []).append(q.id)
    return out


def personalize(plan: Plan, ledger: Ledger, bank: dict[str, Question], fresh: bool) -> tuple[Plan, list[tuple[str, str]]]:
    """The plan for this candidate, keeping its stages and their order: drill questions the candidate got wrong
    come first; with ``fresh`` ("换一套题") each technical question is swapped for one of the same topic the
    candidate has not seen, else the one answered worst. Returns the plan and why each changed question is there."""
    missed = _missed_counts(ledger)
    asked = Counter(r["question_id"] for r in ledger.rows("SELECT question_id FROM turns"))
    worst: dict[str, float] = {}
    for r in ledger.rows("SELECT question_id, score FROM turns WHERE score IS NOT NULL"):
        worst[r["question_id"]] = min(worst.get(r["question_id"], 100), r["score"])
    stages, why = [], []
    for stage in plan.stages:
        questions = list(stage.questions)
        if stage.id == "drill":
            order = {q: i for i, q in enumerate(stage.questions)}
            family = _variant_families(bank)
            misses = {q: sum(missed[v] for v in [q, *family.get(q, [])]) for q in questions}
            questions.sort(key=lambda q: (-misses[q], order[q]))
            why += [(q, f"上次漏答 {misses[q]} 个要点") for q in questions if misses[q]]
            for i, qid in enumerate(questions):  # a computation done before comes back with a fresh configuration
                unseen = [v for v in family.get(qid, []) if asked[v] == 0]
                if asked[qid] and unseen:
                    questions[i] = unseen[0]
                    why.append((unseen[0], "做过这道算数题：换一组模型参数再算一遍"))
        elif stage.id == "technical" and fresh:
            taken = set(questions)
            for i, qid in enumerate(questions):
                same = sorted((q for q in bank.values() if q.topic == bank[qid].topic and q.stage == "technical" and q.id not in taken),
                              key=lambda q: (asked[q.id] > 0, worst.get(q.id, 101), abs(q.difficulty - bank[qid].difficulty), q.id))
                if same and (asked[same[0].id] == 0 or worst.get(same[0].id, 100) < worst.get(qid, 100)):
                    pick = same[0]
                    questions[i] = pick.id
                    taken.add(pick.id)
                    why.append((pick.id, "没练过的同话题题" if asked[pick.id] == 0 else f"同话题里答得最差（{worst[pick.id]} 分）"))
        stages.append(stage.model_copy(update={"questions": questions}))
    stages = [st.model_copy(update={"checklist": (st.checklist + reasons(bank, why))[:12]}) if st.id in ("technical", "drill") and why
              else st for st in stages]
    suffix = "_fresh" if fresh else "_for_you"
    return plan.model_copy(update={"id": (plan.id + suffix)[:60], "stages": stages}), why
