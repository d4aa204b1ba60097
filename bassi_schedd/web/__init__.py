"""The dashboard (``bassi-schedd web``): its own process, reading the state DB and run folders.

app.py builds the Starlette app; security.py guards every request (Host, token, Origin,
headers); api.py, pages.py and sse.py answer; reader.py gathers what they show; server.py binds
the socket and runs uvicorn. The daemon never imports this package (a contract in ``make lint``).
"""
