"""What each figure of `img2car evaluate` means: one text for `--help` and for the report.
No heavy imports here, so `img2car evaluate --help` stays instant."""

from __future__ import annotations

import textwrap

DATA = (
    "Held-out data: only people and emoji that no evaluated model trained on. With --split, exactly the "
    "people and emoji that split file holds out. Otherwise, when --faces is the file a model trained on "
    "(the same file name as recorded in its snapshot), only the identities in the model's held-out list "
    "are used (snapshot['heldout_identities']; a DTN from before split files: its f's), intersected over "
    "the models; likewise only the emoji records in every model's snapshot['heldout_emoji']. A faces or "
    "emoji file other than the training one is taken as held out entirely. Models whose snapshots record "
    "different splits (the hashes of the split file's parts) are refused. With fewer than 10 held-out "
    "people the figures are noisy: a warning says so, and the table gives retrieval's chance levels "
    "(a ruler scoring at random) beside the figures."
)

FIGURES: dict[str, str] = {
    "retrieval": (
        "Identity retrieval (the DTN paper's protocol, scaled down): each held-out photo whose person has at "
        "least 2 photos is a query; the emoji made from it ranks all other held-out photos by cosine "
        "similarity of a ruler encoder's representation (emoji vs photo). Rank = 1 + the number of other "
        "people's photos scoring above that person's best other photo (ties count half). Reported: median "
        "rank, top-1 and top-5 (share of queries with rank <= 1, <= 5). Rulers: the independent judge "
        "(--judge-encoder), and the f of each DTN evaluated; CycleGAN has no f of its own, so it is measured "
        "with the judge and with the DTN's f. The reference column ranks with the photo itself instead of "
        "its emoji: the best that ruler can do. How sure top-1 is: a 95% percentile interval from "
        "resampling the held-out people (each with all their photos, since one person's photos succeed or "
        "fail together), and each model's top-1 minus the first model's with its paired interval (the "
        "same people drawn for both): an interval that spans 0 does not tell the two apart. 'Emoji among "
        "emoji': the same ranking with the other emoji as the gallery (each emoji's own photo left out as "
        "before), so nothing crosses from cartoon to photo; beside the reference (photo among photos) it "
        "tells emoji that do not tell people apart from a ruler that cannot compare a cartoon with a photo. "
        "It also rewards an emoji that copies a person's photo conditions (light, colour cast) into every "
        "emoji of them, so read it with the figures above, never alone."
    ),
    "c2st": (
        "Classifier two-sample test: a fresh small CNN is trained for a fixed short budget to tell the model's "
        "emoji (from held-out photos) from real emoji, on one half of each (balanced); its accuracy on the "
        "other half is reported. 50% = indistinguishable, 100% = always told apart. Both sides are compared "
        "at realism_size (128 px by default, the real Bitmoji's own size): the model's emoji resized from g's "
        "size as `img2car caricature` does (bicubic), the real ones area-downscaled. The real side is every "
        "held-out emoji and, when fewer than 2 x realism_per_side (128) or than the photos, emoji the models "
        "trained on (realism_fill; the report says how many), so the tested half has >= 128 a side (about "
        "+-3 points) where there are the photos for it."
    ),
    "kid": (
        "KID (kernel inception distance, Binkowski et al. 2018) on encoder features (the judge's; the DTN's f "
        "when no judge is given): unbiased MMD^2 between the model's emoji and the real emoji of the two-sample "
        "test (both at realism_size) with the "
        "polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets. 0 = same distribution; "
        "can be slightly negative by chance."
    ),
    "gender": (
        "Attribute agreement: the share of held-out photos whose emoji keeps the apparent gender, judged by a "
        "model trained on CelebA-HQ photos (--photo-genders) for the photo and small CNNs trained on Bitmoji "
        "(--emoji-genders) for the emoji; each classifier's accuracy on its own held-out fifth is reported. "
        "A ruler on pixels is the majority vote of gender_ensemble small CNNs (5) that differ only in their "
        "seed: on generated emoji one CNN's answers move with its seed far more than its held-out accuracy "
        "shows (eight seeds, all 98-99.7% on real Bitmoji, put one model at 84.3% to 95.0%), so the vote is "
        "the figure and each emoji CNN's own figure is given beside it (lowest to highest). "
        "The photo's model (photo_gender_ruler): a linear probe on dlib's face descriptor where its weights are "
        "installed (the default, 'auto'; the label depends on no evaluated model, and on our crops it is far "
        "steadier), else the CNN vote on the pixels ('cnn'). "
        "'chance' is the agreement expected if the emoji's gender were independent of the photo's, given "
        "both shares of 'male'. The photo classifier's within_person_agreement (the mean share of a person's "
        "photos given that person's majority answer) shows how reliable it is on our crops, which it was not "
        "trained on, and caps the per-photo agreement near it; the person's majority answer is the steadier "
        "label, so agreement with it is reported too (each emoji against the majority answer over its "
        "person's photos). Both come with a 95% interval from resampling the people, and the majority-answer "
        "figure with each model minus the first (paired), as for retrieval's top-1."
    ),
    "colour": (
        "Colours kept: the Spearman rank correlation, over the held-out photos, between the CIE L* of the "
        "cheeks (skin) and of the band above the forehead (hair) read from the photo and from its emoji "
        "(nets/colour_code.py's regions and robust mean). 1 = darker-skinned people always get darker emoji; "
        "0 = unrelated. A model trained with the colour code is measured by the reader it was trained with. "
        "Each comes with a 95% interval from resampling the people (each with all their photos; the rank "
        "correlation recomputed on each draw) and each model's figure minus the first's, paired. 'Share of "
        "its variance between people': how much of the spread of the emoji's skin (or hair) lightness lies "
        "between people rather than between one person's photos (an intraclass correlation); the reference "
        "column gives it for the photos, where light and camera move it as much as the person does. An emoji "
        "that keeps the person's colour, not the photo's light, scores above the photos. 'Against the person's "
        "typical one': the emoji's lightness ranked against the mean of its person's photos' readings, a "
        "steadier label than one photo's (as the person's majority answer is for gender)."
    ),
    "diversity": (
        "Diversity: the mean over pairs of different people (one photo each) of the mean absolute pixel "
        "difference between their emoji (0..1 scale), and of 1 - cosine similarity of their encoder features "
        "(the encoder KID uses). A collapsed generator (the same emoji for everyone) scores ~0; the reference "
        "column gives the figure for real held-out emoji. Both sides at realism_size (128 px), as a user sees "
        "the emoji (g's output enlarged as for the two-sample test), so models of different sizes, and "
        "reports of either, compare."
    ),
}


def help_text(width: int = 100) -> str:
    """The definitions, wrapped for a terminal (the CLI's help keeps line breaks as written)."""
    lines = ["figures:"]
    for name, text in FIGURES.items():
        lines += textwrap.wrap(f"{name}: {text}", width, initial_indent="  ", subsequent_indent="    ")
    return "\n".join(lines + [""] + textwrap.wrap(DATA, width))
