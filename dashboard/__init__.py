"""The Streamlit dashboard (a face): ``app.py`` is the page; the modules beside it draw its
views. They call the package through :mod:`deterrence.api` only."""
