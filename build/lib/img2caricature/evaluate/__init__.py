"""`img2car evaluate`: photo->emoji models compared on people none of them trained on.

definitions.py  what each figure means (shown in --help and in the report)
heldout.py      which faces and emoji no model trained on
classifier.py   the small CNN behind the two-sample test and the gender classifiers
retrieval.py    identity retrieval from emoji
realism.py      classifier two-sample test and KID
attributes.py   gender classifiers and agreement
diversity.py    how different the emoji of different people are
report.py       metrics.json, metrics.md and the image grid
pipeline.py     the whole evaluation, composed from the above
"""
