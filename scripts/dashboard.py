"""The CloudWatch dashboard of template.yaml (`Dashboard`), generated: its layout is written here once, by
metric name, and `python -m scripts.dashboard --write` puts the body into template.yaml (and the picture
into docs/dashboard.svg). tests/unit/test_dashboard.py fails when the template's body is not this one, or
when a widget names a metric that no code emits.

The body is a `!Sub` string: `${MetricsNamespace}`, `${InstanceName}`, `${AWS::Region}` and the queue and
function names are filled in at deploy. With a native source on, its widget is added (`!If HasSource`)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from typing import Any

from tweakwise_local.template import ROOT, TEMPLATE

NAMESPACE = "${MetricsNamespace}"
WIDTH = 24  # CloudWatch's grid: 24 columns
ROW = 6  # each widget's height


@dataclass(frozen=True)
class Metric:
    name: str
    service: str = ""  # our metrics: the function's POWERTOOLS_SERVICE_NAME; AWS's: empty
    namespace: str = NAMESPACE
    dimensions: tuple[tuple[str, str], ...] = ()  # AWS's metrics: their dimensions
    stat: str = "Sum"
    label: str = ""

    def line(self) -> list[Any]:
        if self.namespace == NAMESPACE:
            dims: list[str] = ["Instance", "${InstanceName}"] + (
                ["service", self.service] if self.service else []
            )
        else:
            dims = [part for pair in self.dimensions for part in pair]
        options: dict[str, Any] = {"stat": self.stat}
        if self.label:
            options["label"] = self.label
        return [self.namespace, self.name, *dims, options]


@dataclass(frozen=True)
class Widget:
    title: str
    metrics: tuple[Metric, ...]
    view: str = "timeSeries"
    width: int = 8


def _queue(name: str, queue: str, label: str) -> Metric:
    return Metric(name, namespace="AWS/SQS", dimensions=(("QueueName", queue),), stat="Maximum", label=label)


CATALOG_QUEUE, DEAD_LETTERS = "${CatalogQueue.QueueName}", "${CatalogDeadLetterQueue.QueueName}"
WORKER, PUBLISHER, MONITOR, SOURCE = "catalog-worker", "publisher", "catalog-monitor", "catalog-source"
SNAPSHOT = "catalog-snapshot"

WIDGETS = (
    Widget(
        "Catalog in Tweakwise",
        (
            Metric("TotalProducts", MONITOR, stat="Maximum"),
            Metric("TotalCategories", MONITOR, stat="Maximum"),
        ),
    ),
    Widget(
        "Webhook requests and refusals",
        tuple(
            Metric(name, namespace="AWS/ApiGateway", dimensions=(("ApiId", "${CatalogApi}"),), label=label)
            for name, label in (("Count", "requests"), ("4xx", "refused (4xx)"), ("5xx", "failed (5xx)"))
        ),
    ),
    Widget(
        "Catalog queue",
        (
            _queue("ApproximateNumberOfMessagesVisible", CATALOG_QUEUE, "waiting"),
            _queue("ApproximateAgeOfOldestMessage", CATALOG_QUEUE, "oldest, seconds"),
            _queue("ApproximateNumberOfMessagesVisible", DEAD_LETTERS, "dead letters"),
        ),
    ),
    Widget(
        "Changes applied by the worker",
        tuple(
            Metric(name, WORKER)
            for name in (
                "EventsApplied",
                "EventsUnchanged",
                "StaleEventsSkipped",
                "PatchesSkipped",
                "EventsRejected",
                "EventsRetried",
            )
        ),
        width=12,
    ),
    Widget(
        "Lag (seconds)",
        (
            Metric("SyncLagSeconds", WORKER, stat="p50", label="sync p50"),
            Metric("SyncLagSeconds", WORKER, stat="p99", label="sync p99"),
            Metric("PublishLagSeconds", PUBLISHER, stat="Maximum", label="publish"),
        ),
        width=12,
    ),
    Widget(
        "Snapshot runs",
        tuple(Metric(f"Snapshots{o}", SNAPSHOT) for o in ("Applied", "Guarded", "Refused", "Failed")),
    ),
    Widget(
        "Snapshot items",
        (
            Metric("SnapshotItemsCreated", SNAPSHOT),
            Metric("SnapshotItemsUpdated", SNAPSHOT),
            Metric("SnapshotItemsDeleted", SNAPSHOT),
            Metric("SnapshotItemsRejected", SNAPSHOT),
            Metric("SnapshotInvalidLines", SNAPSHOT),
        ),
    ),
    Widget(
        "Publish and verification",
        (
            Metric("PublishesStarted", PUBLISHER),
            Metric("PublishFailures", PUBLISHER),
            Metric("PublishVerified", PUBLISHER, label="items shoppers see as sent"),
            Metric("PublishMismatches", PUBLISHER, label="items shoppers see otherwise"),
            Metric("TaskFailures", label="task failures"),
        ),
    ),
    Widget(
        "Native sources",
        (
            Metric("SourceEventsQueued", SOURCE),
            Metric("SourceEventsSkipped", SOURCE),
            Metric("SourceEventsDeadLettered", SOURCE),
        ),
    ),
)
SOURCE_WIDGET = "Native sources"


def _alarms(template: dict[str, Any], with_sources: bool) -> list[str]:
    """Every alarm's ARN by its name (AlarmName is set on each), the source ones only with a source on."""
    found = []
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        if resource.get("Condition") and not with_sources:
            continue
        name = resource["Properties"]["AlarmName"]["Fn::Sub"]
        found.append(f"arn:${{AWS::Partition}}:cloudwatch:${{AWS::Region}}:${{AWS::AccountId}}:alarm:{name}")
    return found


def body(template: dict[str, Any], with_sources: bool) -> dict[str, Any]:
    widgets: list[dict[str, Any]] = []
    x = y = 0
    shown = [w for w in WIDGETS if with_sources or w.title != SOURCE_WIDGET]
    for widget in shown:
        if x + widget.width > WIDTH:
            x, y = 0, y + ROW
        widgets.append(
            {
                "type": "metric",
                "x": x, "y": y, "width": widget.width, "height": ROW,
                "properties": {
                    "title": widget.title, "view": widget.view, "region": "${AWS::Region}", "period": 300,
                    "metrics": [metric.line() for metric in widget.metrics],
                },
            }
        )  # fmt: skip
        x += widget.width
    alarms = _alarms(template, with_sources)
    widgets.append(
        {
            "type": "alarm",
            "x": 0, "y": y + ROW, "width": WIDTH, "height": ROW,
            "properties": {"title": "Every alarm", "alarms": alarms},
        }
    )  # fmt: skip
    return {"widgets": widgets}


def text(board: dict[str, Any]) -> str:
    """The body as JSON text, a widget per line (an alarm per line): readable in template.yaml."""
    lines = []
    for widget in board["widgets"]:
        if widget["type"] == "alarm":
            alarms = ",\n    ".join(json.dumps(arn) for arn in widget["properties"]["alarms"])
            head = json.dumps(
                {**widget, "properties": {"title": widget["properties"]["title"], "alarms": []}}
            )
            lines.append(head.replace('"alarms": []', f'"alarms": [\n    {alarms}\n  ]'))
        else:
            lines.append(json.dumps(widget))
    return '{"widgets": [\n  ' + ",\n  ".join(lines) + "\n]}\n"


def rendered(template: dict[str, Any]) -> dict[str, Any]:
    """The dashboard's DashboardBody as the template holds it (as tweakwise_local.template loads it)."""
    return {
        "Fn::If": [
            "HasSource",
            {"Fn::Sub": text(body(template, True))},
            {"Fn::Sub": text(body(template, False))},
        ]
    }


def _yaml(template: dict[str, Any]) -> str:
    """DashboardBody in template.yaml's own style: `!If` over two `!Sub` literal blocks."""
    out = ["      DashboardBody: !If", "        - HasSource"]
    for with_sources in (True, False):
        out.append("        - !Sub |")
        out += [f"            {line}" for line in text(body(template, with_sources)).splitlines()]
    return "\n".join(out) + "\n"


def svg(board: dict[str, Any]) -> str:
    """A picture of the layout: each widget a box with its title and metrics (docs/dashboard.svg)."""
    scale, unit = 40, 20
    rows = max(w["y"] + w["height"] for w in board["widgets"])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH * scale}" height="{rows * unit + 10}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH * scale}" height="{rows * unit + 10}" fill="#f4f6f8"/>',
    ]
    for widget in board["widgets"]:
        x, y = widget["x"] * scale + 4, widget["y"] * unit + 4
        w, h = widget["width"] * scale - 8, widget["height"] * unit - 8
        props = widget["properties"]
        parts.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="#fff" stroke="#aab"/>')
        parts.append(f'<text x="{x + 8}" y="{y + 18}" font-weight="bold">{_escape(props["title"])}</text>')
        if widget["type"] == "alarm":
            lines = [
                f"{len(props['alarms'])} alarms: "
                + ", ".join(_alarm_name(a) for a in props["alarms"][:4])
                + " ..."
            ]
        else:
            lines = [_metric_label(m) for m in props["metrics"]]
        for index, line in enumerate(lines[:6]):
            at = f'x="{x + 8}" y="{y + 38 + 15 * index}"'
            parts.append(f'<text {at} fill="#345" font-size="11">{_escape(line)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _alarm_name(arn: str) -> str:
    return arn.rsplit(":alarm:", 1)[1].replace("tweakwise-${InstanceName}-${Environment}-", "")


def _metric_label(line: list[Any]) -> str:
    options = line[-1]
    name = f"{line[1]} ({options['stat']})"
    return f"{options['label']}: {name}" if "label" in options else name


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


BODY_LINE = re.compile(r"^      DashboardBody:.*?(?=^\S|^  \S)", re.MULTILINE | re.DOTALL)


def write() -> None:
    from tweakwise_local.template import load_template

    template = load_template()
    source = TEMPLATE.read_text(encoding="utf-8")
    if not BODY_LINE.search(source):
        raise SystemExit("template.yaml has no `DashboardBody:` under the Dashboard resource")
    TEMPLATE.write_text(BODY_LINE.sub(lambda _m: _yaml(template) + "\n", source, count=1), encoding="utf-8")
    (ROOT / "docs" / "dashboard.svg").write_text(svg(body(template, True)), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--write", action="store_true", help="write the body into template.yaml, and the picture"
    )
    args = parser.parse_args(argv)
    if args.write:
        write()
    else:
        from tweakwise_local.template import load_template

        print(json.dumps(body(load_template(), True), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
