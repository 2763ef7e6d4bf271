from django.urls import path

from . import views

app_name = "library"

urlpatterns = [
    path("", views.index, name="index"),
    path("version", views.version, name="version"),
    path("books/<int:pk>/", views.book_detail, name="book"),
    path("authors/", views.AuthorList.as_view(), name="authors"),
    path("search.json", views.search, name="search"),
]
