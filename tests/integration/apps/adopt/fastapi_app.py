"""A FastAPI app for `fastapi dev fastapi_app.py` (which runs uvicorn with --reload)."""

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from version import VERSION

app = FastAPI()


@app.get("/", response_class=PlainTextResponse)
def index():
    return VERSION
