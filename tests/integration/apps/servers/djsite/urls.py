import json
import os

from django.http import HttpResponse
from django.urls import path
from version import VERSION


def _response(text, content_type="text/plain"):
    response = HttpResponse(text, content_type=content_type)
    response["Content-Length"] = str(len(response.content))  # runserver does not add it
    return response


def index(request):
    return _response(VERSION)


def info(request):
    return _response(json.dumps({
        "version": VERSION,
        "pid": os.getpid(),
        "generation": os.environ.get("RELOADKIT_GENERATION"),
        "client": request.META.get("REMOTE_ADDR"),
    }), "application/json")


urlpatterns = [path("", index), path("info", info)]
