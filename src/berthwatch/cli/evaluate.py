"""``berthwatch evaluate PRED.geojson TRUTH.geojson``: score an output against ground truth."""

from __future__ import annotations

import json

import click

from berthwatch.cli._common import handle_errors, main
from berthwatch.evaluate import evaluate as run_evaluate
from berthwatch.evaluate import load_feature_collection


@main.command("evaluate")
@click.argument("pred", type=click.Path(dir_okay=False))
@click.argument("truth", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON (with every match) instead of a table.")
@click.option(
    "--iou",
    "iou",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=0.3,
    show_default=True,
    help="A prediction matches a truth object if their footprints overlap with at least this IoU ...",
)
@click.option(
    "--distance-factor",
    type=click.FloatRange(0.0),
    default=0.5,
    show_default=True,
    help="... or if their centroids are within this many truth lengths.",
)
@click.option(
    "--kind",
    "kinds",
    type=click.Choice(["vessel", "equipment"]),
    multiple=True,
    help="Score only this kind (repeatable; default: both). Given once, it is also the kind of every feature"
    " without a `kind` property (a plain file of hand-drawn ship outlines: --kind vessel).",
)
@handle_errors
def evaluate(pred: str, truth: str, as_json: bool, iou: float, distance_factor: float, kinds: tuple[str, ...]) -> None:
    """Score PRED (a berthwatch objects.geojson) against TRUTH (GeoJSON with the same `kind` property).

    Objects are matched one-to-one per kind; reports precision, recall, F1, median length and heading errors,
    and for two-date outputs (features with `status`) status accuracy and change precision/recall/F1. Truth
    features with `occluded: true` are neither missed nor allowed to make a prediction false.

    \b
    Examples:
      berthwatch evaluate out/tartus/objects.geojson truth.geojson
      berthwatch evaluate out/sf/objects.geojson ships_epsg4326.geojson --kind vessel
    """
    default_kind = kinds[0] if len(kinds) == 1 else None
    pred_fc = load_feature_collection(pred, default_kind=default_kind)
    truth_fc = load_feature_collection(truth, default_kind=default_kind)
    result = run_evaluate(
        pred_fc,
        truth_fc,
        iou_threshold=iou,
        distance_factor=distance_factor,
        kinds=kinds or ("vessel", "equipment"),
    )
    result.pred_source, result.truth_source = pred, truth
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(result.table())
