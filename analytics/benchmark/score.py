"""A body's practice score over four dimensions, explained, and recommendations from gaps.

The score is a reading aid, not a grade: each dimension (collection and consent, content
and mobile, measurement, reach) is the weighted mean of a few components on 0–100, each
shown with the value it comes from and whether Crieur observed it or the body declared
it. Observed values win over declared ones: what the tool sees is the better evidence.
A component without any value is left out, and a dimension without any component is
"not assessed" rather than 0.

Recommendations are concrete French sentences triggered by gaps (a risky source in use,
statistics never read…), ranked by priority and by how far the body is from its peers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from contacts.i18n import N_, Message

DIMENSIONS = {
    "collection": N_("Collecte et consentement"),
    "content": N_("Contenu et mobile"),
    "measurement": N_("Mesure"),
    "reach": N_("Portée"),
}


@dataclass(frozen=True)
class Component:
    id: str
    label: str
    value: float | None
    weight: float
    source: str  # "observé" | "déclaré" | ""
    explanation: str


@dataclass(frozen=True)
class DimensionScore:
    id: str
    label: str
    score: int | None
    components: list[Component] = field(default_factory=list)

    @property
    def summary(self) -> str:
        if self.score is None:
            return N_("%(label)s : non évalué (aucune donnée).", label=Message(self.label))
        level = (
            N_("bon")
            if self.score >= 70
            else N_("à consolider")
            if self.score >= 40
            else N_("à construire")
        )
        return N_(
            "%(label)s : %(score)s/100, niveau %(level)s.",
            label=Message(self.label),
            score=self.score,
            level=Message(level),
        )


@dataclass(frozen=True)
class Recommendation:
    id: str
    dimension: str
    priority: int  # 1 = first
    text: str


def _pick(
    ind: str, declared: Mapping[str, float], observed: Mapping[str, float]
) -> tuple[float | None, str]:
    if ind in observed and observed[ind] is not None:
        return float(observed[ind]), N_("observé")
    if ind in declared and declared[ind] is not None:
        return float(declared[ind]), N_("déclaré")
    return None, ""


def _clip(x: float) -> float:
    return max(0.0, min(100.0, x))


def practice_score(
    declared: Mapping[str, float], observed: Mapping[str, float] | None = None
) -> dict[str, DimensionScore]:
    """Scores per dimension (0–100 or None) with their components explained in French."""
    observed = observed or {}

    def get(ind: str) -> tuple[float | None, str]:
        return _pick(ind, declared, observed)

    comps: dict[str, list[Component]] = {d: [] for d in DIMENSIONS}

    def add(
        dim: str,
        cid: str,
        label: str,
        value: float | None,
        weight: float,
        source: str,
        explanation: str,
    ) -> None:
        comps[dim].append(Component(cid, label, value, weight, source, explanation))

    # Collection and consent
    risky, src = (observed.get("contacts_risky_pct"), N_("observé"))
    if risky is not None:
        add(
            "collection",
            "risky_sources",
            N_("Contacts de sources à risque"),
            _clip(100 - 5 * risky),
            3,
            src,
            N_(
                N_(
                    "%(pct)s %% de vos inscriptions viennent d'échanges, d'achats ou d'une "
                    "source inconnue (0 %% donne 100, 20 %% ou plus donne 0)."
                ),
                pct=f"{risky:.0f}",
            ),
        )
    else:
        flags = [
            get(i) for i in ("risk_exchange_contacts", "risk_buy_files", "risk_unknown_source")
        ]
        known = [(v, s) for v, s in flags if v is not None]
        if known:
            share = sum(v for v, _ in known) / len(known)
            add(
                "collection",
                "risky_sources",
                N_("Pratiques de collecte à risque"),
                _clip(100 - share),
                3,
                known[0][1],
                N_(
                    "Échange, achat de fichiers ou origine inconnue : chaque "
                    "pratique déclarée fait baisser ce critère."
                ),
            )
    value, src = get("collect_website_signup")
    if value is not None:
        add(
            "collection",
            "own_signup",
            N_("Adresses issues de vos formulaires"),
            _clip(value * 1.25),
            2,
            src,
            N_(
                N_(
                    "%(pct)s %% de vos adresses viennent d'inscriptions sur votre site ou à "
                    "vos évènements (80 %% ou plus donne 100)."
                ),
                pct=f"{value:.0f}",
            ),
        )
    value, src = get("collect_website_any")
    if value is not None:
        add(
            "collection",
            "signup_form",
            N_("Formulaire d'inscription en ligne"),
            value,
            1,
            src,
            N_("Un formulaire sur votre site recueille un consentement traçable."),
        )

    # Content and mobile
    done, src = get("practice_mobile_done")
    planned, psrc = get("practice_mobile_optimisation")
    if done is not None or planned is not None:
        mobile = done if done else (50.0 if planned else 0.0)
        add(
            "content",
            "mobile",
            N_("E-mails adaptés au mobile"),
            mobile,
            3,
            src or psrc,
            N_("Des e-mails lisibles sur téléphone (un projet en cours compte pour moitié)."),
        )
    value, src = get("practice_segmentation")
    if value is not None:
        add(
            "content",
            "segmentation",
            N_("Segmentation et personnalisation"),
            value,
            2,
            src,
            N_("Adapter les envois aux publics plutôt qu'un même message pour tous."),
        )
    video, src = get("practice_video")
    if video is not None:
        planned, _ = get("practice_video_planned")
        add(
            "content",
            "video",
            N_("Vidéo dans les e-mails"),
            video if video else 30.0 * bool(planned),
            1,
            src,
            N_("Une vignette vidéo (vœux, grands projets) ; un projet compte pour 30."),
        )
    value, src = get("practice_social_networks")
    if value is not None:
        add(
            "content",
            "social",
            N_("Liens vers les réseaux sociaux"),
            value,
            1,
            src,
            N_("Relayer vos envois sur vos réseaux sociaux."),
        )

    # Measurement
    for ind, cid, label, weight, text in (
        (
            "measure_standard_kpis",
            "read_stats",
            N_("Lecture des statistiques"),
            3,
            N_("Consulter ouvertures, clics et désinscriptions après vos envois."),
        ),
        (
            "measure_click_rate",
            "click_rate",
            N_("Suivi du taux de clics"),
            2,
            N_("Regarder quels liens sont cliqués."),
        ),
        (
            "measure_site_traffic",
            "site_traffic",
            N_("Trafic généré sur le site"),
            1,
            N_("Mesurer les visites que vos e-mails apportent à votre site."),
        ),
        (
            "measure_tests",
            "tests",
            N_("Tests avant envoi"),
            1,
            N_("Tester le rendu et la délivrabilité avant d'envoyer."),
        ),
    ):
        value, src = get(ind)
        if value is not None:
            add("measurement", cid, label, value, weight, src, text)
    value, src = get("measure_none")
    if value is not None and value >= 50:
        add(
            "measurement",
            "measures_something",
            N_("Mesure de l'efficacité"),
            0.0,
            2,
            src,
            N_("Aucune mesure de l'efficacité des campagnes."),
        )

    # Reach
    uses = [
        get(i)
        for i in ("use_newsletters", "use_events_invitations", "use_surveys", "use_press_relations")
    ]
    known = [(v, s) for v, s in uses if v is not None]
    if known:
        add(
            "reach",
            "uses",
            N_("Diversité des usages"),
            sum(v for v, _ in known) / len(known),
            2,
            known[0][1],
            N_(
                "Lettres, invitations, enquêtes, relations presse : chaque usage "
                "touche un public de plus."
            ),
        )
    failure = observed.get("delivery_failure_pct")
    if failure is not None:
        add(
            "reach",
            "deliverability",
            N_("Délivrabilité"),
            _clip(100 - 10 * failure),
            2,
            N_("observé"),
            N_(
                "%(pct)s %% de vos envois ont échoué (10 %% ou plus donne 0).",
                pct=f"{failure:.1f}",
            ),
        )
    out = {}
    for dim, label in DIMENSIONS.items():
        scored = [c for c in comps[dim] if c.value is not None]
        weight = sum(c.weight for c in scored)
        score = round(sum(c.value * c.weight for c in scored) / weight) if weight else None
        out[dim] = DimensionScore(dim, label, score, comps[dim])
    return out


_Rule = tuple[str, str, int, Callable[[Callable[[str], float | None]], bool], str]

RULES: tuple[_Rule, ...] = (
    (
        "reconsent_exchanged",
        "collection",
        1,
        lambda v: (v("risk_exchange_contacts") or 0) >= 50,
        N_(
            "Vos contacts issus d'échanges de fichiers%(exchanged)s : lancez une campagne de "
            "reconsentement (double opt-in) ; ils ne recevront rien tant qu'ils n'ont pas confirmé."
        ),
    ),
    (
        "reconsent_purchased",
        "collection",
        1,
        lambda v: (v("risk_buy_files") or 0) >= 50,
        N_(
            "Vos contacts issus de fichiers achetés%(purchased)s : cessez d'en acheter et "
            "demandez leur consentement par une campagne de reconsentement, ou supprimez-les."
        ),
    ),
    (
        "document_unknown",
        "collection",
        1,
        lambda v: (v("risk_unknown_source") or 0) >= 50,
        N_(
            "Vos contacts d'origine inconnue%(unknown)s : retrouvez leur origine ou demandez leur "
            "consentement avant tout envoi ; à défaut, supprimez-les."
        ),
    ),
    (
        "add_signup_form",
        "collection",
        2,
        lambda v: v("collect_website_any") == 0,
        N_(
            "Ajoutez le formulaire d'inscription Crieur à votre site : chaque inscription est "
            "confirmée et prouvée (date, page, confirmation)."
        ),
    ),
    (
        "read_stats",
        "measurement",
        1,
        lambda v: v("measure_standard_kpis") == 0 or (v("measure_none") or 0) >= 50,
        N_(
            "Consultez les statistiques de chaque campagne quelques jours après l'envoi : "
            "ouvertures, clics, désinscriptions."
        ),
    ),
    (
        "follow_clicks",
        "measurement",
        2,
        lambda v: v("measure_click_rate") == 0,
        N_("Suivez le taux de clics par lien : il dit quels contenus intéressent vraiment."),
    ),
    (
        "mobile",
        "content",
        1,
        lambda v: v("practice_mobile_done") == 0,
        N_(
            "Rendez vos e-mails lisibles sur mobile : utilisez les modèles Crieur, responsifs, "
            "et vérifiez l'aperçu téléphone avant l'envoi."
        ),
    ),
    (
        "segment",
        "content",
        2,
        lambda v: v("practice_segmentation") == 0,
        N_(
            "Segmentez vos listes (quartier, centre d'intérêt, public) pour envoyer moins mais "
            "mieux : c'est la première réponse à la saturation des boîtes."
        ),
    ),
    (
        "inbox_saturation",
        "reach",
        3,
        lambda v: (v("obstacle_inbox_saturation") or 0) >= 50 and v("practice_segmentation") == 0,
        N_("Vous citez la saturation des boîtes de réception : espacez vos envois et ciblez-les."),
    ),
    (
        "resources",
        "reach",
        3,
        lambda v: (v("obstacle_lack_resources") or 0) >= 50,
        N_(
            "Vous manquez de ressources : préparez un modèle de lettre réutilisable et un "
            "calendrier éditorial trimestriel."
        ),
    ),
    (
        "deliverability",
        "reach",
        2,
        lambda v: (v("delivery_failure_pct") or 0) >= 3,
        N_(
            "Plus de 3 %% de vos envois échouent : nettoyez vos listes (adresses invalides) et "
            "vérifiez l'authentification de votre domaine (SPF, DKIM, DMARC)."
        ),
    ),
    (
        "video",
        "content",
        3,
        lambda v: v("practice_video") == 0 and (v("practice_video_planned") or 0) >= 50,
        N_(
            "Vous projetez d'intégrer de la vidéo : le bloc vidéo de Crieur insère une vignette "
            "cliquable, lisible partout."
        ),
    ),
)


def recommendations(
    declared: Mapping[str, float],
    observed: Mapping[str, float] | None = None,
    peers: Mapping[str, float] | None = None,
    limit: int = 6,
) -> list[Recommendation]:
    """Concrete recommendations from the gaps, most urgent first.

    ``peers``: indicator → share of peer bodies that adopt it; a practice most peers
    have and the body lacks moves up one level of priority.
    """
    observed = observed or {}
    peers = peers or {}

    def value(ind: str) -> float | None:
        return _pick(ind, declared, observed)[0]

    share = {
        "exchanged": observed.get("contacts_source_exchanged_pct"),
        "purchased": observed.get("contacts_source_purchased_pct"),
        "unknown": observed.get("contacts_source_unknown_pct"),
    }
    fills = {
        k: N_(" (%(pct)s %% de vos inscriptions)", pct=f"{v:.0f}") if v else ""
        for k, v in share.items()
    }
    adopted_by_peers = {
        "read_stats": "measure_standard_kpis",
        "follow_clicks": "measure_click_rate",
        "mobile": "practice_mobile_done",
        "segment": "practice_segmentation",
        "add_signup_form": "collect_website_any",
    }
    out = []
    for rid, dim, priority, applies, text in RULES:
        if not applies(value):
            continue
        peer_share = peers.get(adopted_by_peers.get(rid, ""), 0) or 0
        if peer_share >= 50 and priority > 1:
            priority -= 1
        out.append(Recommendation(rid, dim, priority, Message(text, fills)))
    out.sort(key=lambda r: r.priority)
    return out[:limit]
