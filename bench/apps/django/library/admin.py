"""The admin: every model registered, with lists, filters, searches and inlines."""

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from .models import Author, Book, BookCopy, Branch, Fine, Genre, Hold, Loan, Member, Publisher, Review


class BookCopyInline(admin.TabularInline):
    model = BookCopy
    extra = 0
    fields = ["barcode", "branch", "status", "acquired"]


class ReviewInline(admin.StackedInline):
    model = Review
    extra = 0
    readonly_fields = ["written"]


@admin.register(Branch)
class BranchAdmin(admin.ModelAdmin):
    list_display = ["name", "opens_at", "closes_at"]
    search_fields = ["name", "address"]


@admin.register(Author)
class AuthorAdmin(admin.ModelAdmin):
    list_display = ["last_name", "first_name", "born", "book_count"]
    search_fields = ["last_name", "first_name"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Author]:
        return super().get_queryset(request).annotate(_book_count=Count("books"))

    @admin.display(ordering="_book_count", description="books")
    def book_count(self, obj: Author) -> int:
        return obj._book_count  # type: ignore[attr-defined]


@admin.register(Publisher)
class PublisherAdmin(admin.ModelAdmin):
    list_display = ["name", "country", "website"]
    list_filter = ["country"]


@admin.register(Genre)
class GenreAdmin(admin.ModelAdmin):
    list_display = ["name", "parent"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Book)
class BookAdmin(admin.ModelAdmin):
    list_display = ["title", "isbn", "publisher", "published", "pages"]
    list_filter = ["genres", "publisher", "published"]
    search_fields = ["title", "subtitle", "isbn", "authors__last_name"]
    filter_horizontal = ["authors", "genres"]
    date_hierarchy = "published"
    inlines = [BookCopyInline, ReviewInline]


@admin.register(BookCopy)
class BookCopyAdmin(admin.ModelAdmin):
    list_display = ["barcode", "book", "branch", "status"]
    list_filter = ["status", "branch"]
    search_fields = ["barcode", "book__title"]
    autocomplete_fields = ["book"]


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    list_display = ["card_number", "user", "home_branch", "joined"]
    list_select_related = ["user", "home_branch"]
    search_fields = ["card_number", "user__username", "user__last_name"]


@admin.action(description="Mark the selected loans returned")
def mark_returned(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Loan]) -> None:
    from django.utils import timezone

    queryset.filter(returned__isnull=True).update(returned=timezone.now())


@admin.register(Loan)
class LoanAdmin(admin.ModelAdmin):
    list_display = ["copy", "member", "lent", "due", "returned", "overdue"]
    list_filter = ["due", "returned"]
    raw_id_fields = ["copy", "member"]
    actions = [mark_returned]

    @admin.display(boolean=True)
    def overdue(self, obj: Loan) -> bool:
        return obj.overdue


@admin.register(Hold)
class HoldAdmin(admin.ModelAdmin):
    list_display = ["book", "member", "pickup_branch", "placed", "fulfilled"]
    list_filter = ["fulfilled", "pickup_branch"]


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ["book", "member", "rating", "written"]
    list_filter = ["rating"]


@admin.register(Fine)
class FineAdmin(admin.ModelAdmin):
    list_display = ["loan", "amount", "paid"]
    list_filter = ["paid"]
