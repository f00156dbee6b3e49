"""`img2car serve`: try the model in a browser (app.py; the page is static/index.html)."""
