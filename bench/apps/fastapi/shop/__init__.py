"""A shop's HTTP API: FastAPI, pydantic and SQLAlchemy (SQLite), 40 tables and 80 routes.

The benchmark's real FastAPI app: ``uvicorn shop.main:app``. ``GET /version`` answers with
``shop.version.VERSION``, which the benchmark rewrites to measure save → first new response.
"""
