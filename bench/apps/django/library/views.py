"""The library's public pages, a JSON search and the version route the benchmark polls."""

from django.db.models import Avg, Count, Prefetch
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.generic import ListView

from .models import Author, Book, Branch, Review
from .version import VERSION


def version(request: HttpRequest) -> HttpResponse:
    return HttpResponse(VERSION, content_type="text/plain")


def index(request: HttpRequest) -> HttpResponse:
    latest = Book.objects.select_related("publisher").order_by("-added")[:10]
    branches = Branch.objects.annotate(copy_count=Count("copies"))
    return render(request, "library/index.html", {"latest": latest, "branches": branches})


def book_detail(request: HttpRequest, pk: int) -> HttpResponse:
    book = get_object_or_404(
        Book.objects.select_related("publisher").prefetch_related(
            "authors", "genres", Prefetch("reviews", queryset=Review.objects.select_related("member__user"))
        ),
        pk=pk,
    )
    rating = book.reviews.aggregate(average=Avg("rating"))["average"]
    return render(request, "library/book_detail.html", {"book": book, "rating": rating})


def search(request: HttpRequest) -> JsonResponse:
    term = request.GET.get("q", "").strip()
    books = Book.objects.filter(title__icontains=term)[:20] if term else Book.objects.none()
    return JsonResponse({"results": [{"id": b.pk, "title": b.title, "isbn": b.isbn} for b in books]})


class AuthorList(ListView):
    model = Author
    paginate_by = 25
    template_name = "library/author_list.html"

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return super().get_queryset().annotate(book_count=Count("books"))
