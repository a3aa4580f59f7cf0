"""The self-contained HTML report: summary, charts, metrics, findings with drill-down, and method.

One file, no network: CSS and JavaScript are inline, charts are inline SVG, and a Content Security
Policy forbids fetching anything. The findings table sorts (click a header), filters (text, severity,
rule) and opens each finding's records (click "Records") without any library.
"""

from __future__ import annotations

import re
from html import escape
from importlib.resources import files

from fhir_dnacpr.assurance.charts import grouped_bars, time_series
from fhir_dnacpr.assurance.engine import AuditResult
from fhir_dnacpr.assurance.findings import Finding
from fhir_dnacpr.assurance.metrics import METRICS, METRICS_BY_CODE, MetricCounts, as_percent, metric_values
from fhir_dnacpr.assurance.rules import RULES, RuleSeverity

_ASSETS = files("fhir_dnacpr.assurance") / "data"
_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def _pct(value: float | int | None) -> float | None:
    return None if value is None else 100 * float(value)


def render_html(result: AuditResult, *, title: str = "DNACPR decision assurance report") -> str:
    config = result.config
    css = (_ASSETS / "report.css").read_text(encoding="utf-8")
    js = (_ASSETS / "report.js").read_text(encoding="utf-8")
    masked = not config.show_identifiers
    body = [
        f"<header><h1>{escape(title)}</h1>",
        f'<p class="meta">As of <strong>{config.as_of.isoformat()}</strong> · generated '
        f"{escape(config.generated_at.isoformat())} · {result.records:,} records read "
        f"({result.decisions:,} CPR decisions, {result.plans:,} advance care plans"
        + (
            f", {result.excluded_entered_in_error:,} entered in error and left out"
            if result.excluded_entered_in_error
            else ""
        )
        + ")</p>",
        (
            '<p class="notice masked">Identifiers are masked: people appear as pseudonyms (keyed hash '
            "of the NHS "
            "number) and their names and NHS numbers are removed from rationale excerpts. The report "
            "still holds clinical text: handle it as confidential.</p>"
            if masked
            else '<p class="notice unmasked">IDENTIFIERS ARE SHOWN (run with --show-identifiers): '
            "this report contains NHS numbers, names and clinical text. Handle it as "
            "patient-identifiable data.</p>"
        ),
        "</header>",
        '<nav><a href="#summary">Summary</a> <a href="#trend">Trend</a> <a '
        'href="#organisations">Organisations</a> '
        '<a href="#findings-section">Findings</a> <a href="#method">Method</a></nav>',
        _summary(result),
        _trend(result),
        _organisations(result),
        _findings_section(result),
        _method(result),
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en-GB"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{escape(title)}</title><style>{css}</style></head><body>"
        + "\n".join(body)
        + f"<script>{js}</script></body></html>\n"
    )


def _summary(result: AuditResult) -> str:
    total = result.metrics.total()
    values = metric_values(total)
    cards = [
        ("DNACPR decisions", f"{total.decisions:,}"),
        ("Discussed with the person", as_percent(values["discussed"])),
        ("Capacity recorded", as_percent(values["capacity-recorded"])),
        ("Senior responsibility", as_percent(values["endorsed"])),
        ("Overdue for review", as_percent(values["overdue"])),
        ("Possible blanket clusters", f"{len(result.clusters):,}"),
    ]
    card_html = "".join(
        f'<div class="card"><div class="value">{escape(v)}</div><div class="label">{escape(k)}</div></div>'
        for k, v in cards
    )
    rows = []
    for rule in sorted(RULES.values(), key=lambda r: (r.severity.rank, r.id)):
        enabled = result.config.is_enabled(rule.id)
        count = result.rule_counts.get(rule.id, 0)
        rows.append(
            f'<tr><td><span class="sev sev-{rule.severity.value}">{rule.severity.value}</span></td>'
            f'<td><a href="#rule-{rule.id}">{escape(rule.title)}</a></td>'
            f'<td class="num">{count:,}</td><td>{"on" if enabled else "off"}</td></tr>'
        )
    return (
        '<section id="summary"><h2>Summary</h2>'
        f'<div class="cards">{card_html}</div>'
        "<h3>Findings by rule</h3>"
        '<table class="plain"><thead><tr><th>Severity</th><th>Rule</th><th>Findings</th><th>Rule '
        "run</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
        '<p class="small">Every finding is a flag for review by someone who can see the full record, '
        "not a verdict.</p>"
        "</section>"
    )


def _trend(result: AuditResult) -> str:
    quarters = result.metrics.quarters()
    if not quarters:
        return '<section id="trend"><h2>Trend</h2><p>No dated DNACPR decisions.</p></section>'
    by_q = result.metrics.by_quarter()
    empty = MetricCounts()
    counts = [by_q.get(q, empty).decisions for q in quarters]
    discussed = [_pct(METRICS_BY_CODE["discussed"].value(by_q.get(q, empty))) for q in quarters]
    clusters = [by_q.get(q, empty).clusters for q in quarters]
    chart = time_series(
        quarters,
        counts,
        discussed,
        clusters,
        title="DNACPR decisions per quarter, all organisations",
        bar_label="DNACPR decisions",
        line_label="% discussed with the person",
        marker_label="possible blanket clusters",
    )
    rows = "".join(
        "<tr><td>{q}</td><td class=num>{d:,}</td><td class=num>{a}</td><td class=num>{b}</td>"
        "<td class=num>{c}</td><td class=num>{o}</td><td class=num>{k}</td></tr>".format(
            q=escape(q),
            d=by_q.get(q, empty).decisions,
            a=as_percent(metric_values(by_q.get(q, empty))["discussed"]),
            b=as_percent(metric_values(by_q.get(q, empty))["capacity-recorded"]),
            c=as_percent(metric_values(by_q.get(q, empty))["endorsed"]),
            o=as_percent(metric_values(by_q.get(q, empty))["overdue"]),
            k=by_q.get(q, empty).clusters,
        )
        for q in quarters
    )
    return (
        '<section id="trend"><h2>Trend by quarter</h2>'
        '<p class="small">A spike in decisions with a fall in discussion (as in spring 2020) is the '
        "pattern the "
        "regulator described; red markers show quarters with possible blanket clusters.</p>"
        f'<div class="chart-box">{chart}</div>'
        '<details><summary>Table</summary><table class="plain"><thead><tr><th>Quarter</th><th>Decisions</th>'
        "<th>% discussed</th><th>% capacity recorded</th><th>% senior responsibility</th><th>% overdue</th>"
        f"<th>Clusters</th></tr></thead><tbody>{rows}</tbody></table></details></section>"
    )


def _organisations(result: AuditResult) -> str:
    by_org = result.metrics.by_org()
    if not by_org:
        return '<section id="organisations"><h2>Organisations</h2><p>No organisations.</p></section>'
    names = result.metrics.org_names
    ranked = sorted(by_org.items(), key=lambda kv: (-kv[1].decisions, kv[0]))
    top = ranked[:15]
    labels = [f"{org} {names.get(org, '')}".strip() for org, _ in top]
    series = [
        (metric.title, [_pct(metric.value(c)) for _, c in top]) for metric in METRICS if metric.is_proportion
    ]
    chart = grouped_bars(labels, series, title="Organisations compared (15 with most decisions)")
    rows = []
    for org, c in ranked:
        values = metric_values(c)
        rows.append(
            f"<tr><td>{escape(org)}</td><td>{escape(names.get(org, ''))}</td><td "
            f"class=num>{c.decisions:,}</td>"
            + "".join(f"<td class=num>{as_percent(values[m.code])}</td>" for m in METRICS if m.is_proportion)
            + f"<td class=num>{c.clusters}</td></tr>"
        )
    heads = "".join(f"<th>{escape(m.title)}</th>" for m in METRICS if m.is_proportion)
    return (
        '<section id="organisations"><h2>Organisations</h2>'
        f'<div class="chart-box">{chart}</div>'
        '<table class="plain"><thead><tr><th>ODS code</th><th>Name</th><th>Decisions</th>'
        f"{heads}<th>Clusters</th></tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _evidence_table(finding: Finding) -> str:
    rows = "".join(
        "<tr><td>{system}</td><td>{rid}</td><td>{origin}</td><td>{patient}</td><td>{org}</td><td>{dec}</td>"
        "<td>{date}</td><td>{status}</td><td class=excerpt>{excerpt}</td></tr>".format(
            system=escape(e.system),
            rid=escape(e.record_id),
            origin=escape(e.origin or ""),
            patient=escape(e.patient),
            org=escape(e.organisation or ""),
            dec=escape(e.decision or ""),
            date=escape(e.decision_date or ""),
            status=escape(e.status or ""),
            excerpt=escape(e.excerpt or ""),
        )
        for e in finding.evidence
    )
    return (
        '<table class="evidence"><thead><tr><th>Source system</th><th>Record '
        "id</th><th>Origin</th><th>Person</th>"
        "<th>Organisation</th><th>Decision</th><th>Date</th><th>Status</th><th>Rationale (excerpt)</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
    )


def _findings_section(result: AuditResult) -> str:
    findings = result.findings
    rule_options = "".join(
        f'<option value="{r.id}">{escape(r.title[:70])}</option>'
        for r in sorted(RULES.values(), key=lambda r: (r.severity.rank, r.id))
        if result.rule_counts.get(r.id)
    )
    bodies = []
    for f in findings:
        people = len({e.patient for e in f.evidence})
        person = f.patient or (
            f"{people} people" if people > 1 else f.evidence[0].patient if f.evidence else ""
        )
        record = f.evidence[0].ref if len(f.evidence) == 1 else f"{len(f.evidence)} records"
        search = " ".join((f.rule_id, f.detail, f.organisation, f.quarter or "", person, record)).lower()
        bodies.append(
            f'<tbody class="finding" data-severity="{f.severity.value}" data-rule="{f.rule_id}" '
            f'data-search="{escape(search)}">'
            f'<tr class="row"><td data-sort="{f.severity.rank}"><span class="sev sev-{f.severity.value}">'
            f"{f.severity.value}</span></td>"
            f"<td>{escape(f.rule_id)}</td><td>{escape(f.organisation)}</td><td>{escape(f.quarter or '')}</td>"
            f"<td>{escape(person)}</td><td>{escape(record)}</td><td>{escape(f.detail)}</td>"
            f'<td><button type="button" class="toggle" aria-expanded="false">Records</button></td></tr>'
            f'<tr class="drill" hidden><td colspan="8">{_evidence_table(f)}</td></tr></tbody>'
        )
    truncated = ""
    if result.findings_truncated:
        truncated = (
            f'<p class="notice">This report shows {len(findings):,} of {result.total_findings:,} findings '
            "(a bounded number per rule); findings.csv lists them all.</p>"
        )
    severities = "".join(f'<option value="{s.value}">{s.value}</option>' for s in RuleSeverity)
    return (
        '<section id="findings-section"><h2>Findings</h2>'
        f"{truncated}"
        '<div class="filters"><label>Filter <input id="filter-text" type="search" placeholder="text, '
        "organisation, "
        'record…"></label>'
        '<label>Severity <select id="filter-severity"><option '
        f'value="">all</option>{severities}</select></label>'
        f'<label>Rule <select id="filter-rule"><option value="">all</option>{rule_options}</select></label>'
        f'<span id="shown-count" aria-live="polite">{len(findings):,} shown</span></div>'
        '<table id="findings" class="findings"><thead><tr>'
        '<th data-key="0" data-type="number" aria-sort="ascending">Severity</th><th data-key="1">Rule</th>'
        '<th data-key="2">Organisation</th><th data-key="3">Quarter</th><th data-key="4">Person</th>'
        '<th data-key="5">Record</th><th data-key="6">Detail</th><th></th></tr></thead>'
        + "".join(bodies)
        + "</table></section>"
    )


def _code_spans(text: str) -> str:
    """`name` in a (escaped) description becomes <code>name</code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def _method(result: AuditResult) -> str:
    cfg = result.config.cluster
    items = []
    for rule in sorted(RULES.values(), key=lambda r: (r.severity.rank, r.id)):
        sources = "".join(
            f"<li>{escape(s.title)}{', ' + escape(s.part) if s.part else ''}"
            + (f' — <a href="{escape(s.url)}">{escape(s.url)}</a>' if s.url else "")
            + "</li>"
            for s in rule.sources
        )
        thresholds = ""
        if rule.id == "blanket-cluster":
            thresholds = (
                f"<p>Thresholds in this run: window {cfg.window_days} days, at least "
                f"{cfg.min_cluster_size} different people, similarity ≥ {cfg.similarity_threshold} "
                f"({'word sets' if cfg.shingle_size == 1 else f'word {cfg.shingle_size}-grams'}), "
                "decisions without rationale "
                f"{'included' if cfg.include_missing_rationale else 'left out'}.</p>"
            )
        if rule.id == "review-overdue":
            thresholds = f"<p>As-of date in this run: {result.config.as_of.isoformat()}.</p>"
        items.append(
            f'<article id="rule-{rule.id}"><h3>{escape(rule.title)} <code>{rule.id}</code> '
            f'<span class="sev sev-{rule.severity.value}">{rule.severity.value}</span></h3>'
            f"<p>{_code_spans(escape(rule.description))}</p>{thresholds}<p><strong>Sources</strong></p><ul>{sources}</ul>"
            f"<p><strong>False positives</strong>: {escape(rule.false_positives)}</p></article>"
        )
    metrics = "".join(f"<li><strong>{escape(m.title)}</strong>: {escape(m.definition)}</li>" for m in METRICS)
    return (
        '<section id="method"><h2>Method</h2>'
        "<p>The audit reads each record once. Per-record rules run as records stream by; cross-record "
        "rules compare "
        "only records sharing a blocking key (setting and decision maker for clusters, person for conflicts) "
        "from a temporary on-disk store, so memory stays flat however large the input. People are matched by "
        "a keyed hash of the NHS number.</p>"
        f"<h3>Metrics</h3><ul>{metrics}</ul>"
        "<p>Metrics are computed per custodian organisation and calendar quarter of the decision date. "
        "The same "
        "numbers are in measure-report.json (FHIR MeasureReport, summary) against the Measure "
        "<code>https://fhir-dnacpr.github.io/fhir/Measure/dnacpr-assurance</code>.</p>"
        "<h3>Rules</h3>" + "".join(items) + "</section>"
    )
