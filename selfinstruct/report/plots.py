"""PNG plots of the `stats` report, as base64 for embedding in the HTML report. matplotlib (Agg backend)
is imported here only, and only when plots are made: `stats --no-plots` works without it."""
from __future__ import annotations

import base64
import io
from typing import Any

from ..io.errors import UserError
from .diversity import TopVerb
from .sections import Report, length_edges

ROUGE_BINS = 20  # bins of 0.05 on [0, 1]


def _png(fig, plt) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def make_plots(rep: Report) -> dict[str, str]:
    """Plot name (length, rouge, diversity) -> base64 PNG, for the sections that have data."""
    try:
        import matplotlib
    except ImportError:
        raise UserError("matplotlib is not installed: pip install 'selfinstruct[report]', or use --no-plots") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plots: dict[str, str] = {}
    ln = rep.length
    if ln.generated:
        fig, ax = plt.subplots(figsize=(7, 3.4))
        edges = length_edges(ln.generated + ln.seeds)
        gen_w = [100 / len(ln.generated)] * len(ln.generated)
        ax.hist(ln.generated, bins=edges, weights=gen_w, color="#4C72B0", alpha=0.85,
                label=f"generated ({len(ln.generated)})")
        if ln.seeds:
            ax.hist(ln.seeds, bins=edges, weights=[100 / len(ln.seeds)] * len(ln.seeds),
                    histtype="step", color="#DD8452", linewidth=1.8, label=f"seeds ({len(ln.seeds)})")
        ax.set_xlabel("instruction length (words)")
        ax.set_ylabel("% of instructions")
        ax.legend()
        ax.set_title("Instruction length")
        plots["length"] = _png(fig, plt)
    rg = rep.rouge
    if rg and rg.scores:
        fig, ax = plt.subplots(figsize=(7, 3.4))
        ax.hist(rg.scores, bins=[j / ROUGE_BINS for j in range(ROUGE_BINS + 1)], color="#55A868",
                edgecolor="white")
        if rg.threshold is not None:
            ax.axvline(rg.threshold, color="#C44E52", linestyle="--", label=f"filter threshold {rg.threshold}")
            ax.legend()
        ax.set_xlim(0, 1)
        ax.set_xlabel("ROUGE-L F1 to the most similar seed instruction")
        ax.set_ylabel("# instructions")
        ax.set_title("Similarity to the seed instructions")
        plots["rouge"] = _png(fig, plt)
    dv = rep.diversity
    if dv and dv.top:
        plots["diversity"] = _png(_sunburst(dv.top, plt), plt)
    return plots


def _sunburst(top: list[TopVerb], plt: Any):
    """Self-Instruct Fig. 2: inner ring the top root verbs, outer ring their top direct objects."""
    import matplotlib

    fig, ax = plt.subplots(figsize=(7.5, 7.5))
    palette = matplotlib.colormaps["tab20"]

    def colour(i: int):
        return palette(i % 20)

    inner_vals = [x.count for x in top]
    inner_cols = [colour(i) for i in range(len(top))]
    outer_vals, outer_cols, outer_labels = [], [], []
    for i, x in enumerate(top):
        shown = 0
        for o, n in x.objects:
            outer_vals.append(n)
            outer_cols.append(colour(i))
            outer_labels.append(o)
            shown += n
        if x.count > shown:  # the verb's other objects: one grey, unlabelled wedge
            outer_vals.append(x.count - shown)
            outer_cols.append((0.93, 0.93, 0.93, 1.0))
            outer_labels.append("")
    total = sum(inner_vals)
    small = 8 if len(outer_vals) < 40 else 6
    ax.pie(outer_vals, radius=1.0, colors=outer_cols, labels=[lab if v / total > 0.006 else ""
                                                             for lab, v in zip(outer_labels, outer_vals)],
           labeldistance=0.83, rotatelabels=True, textprops={"fontsize": small},
           wedgeprops={"width": 0.32, "edgecolor": "white", "alpha": 0.75}, startangle=90, counterclock=False)
    ax.pie(inner_vals, radius=0.68, colors=inner_cols, labels=[x.verb for x in top], labeldistance=0.72,
           rotatelabels=True, textprops={"fontsize": small + 1, "weight": "bold"},
           wedgeprops={"width": 0.36, "edgecolor": "white"}, startangle=90, counterclock=False)
    ax.set_title(f"Top {len(top)} root verbs (inner) and their top direct objects (outer)")
    ax.set(aspect="equal")
    return fig
