"""A lending library: branches, books and their copies, members, loans, holds and reviews."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

isbn_validator = RegexValidator(r"^(97[89])?\d{9}[\dX]$", "an ISBN-10 or ISBN-13, digits only")


class Branch(models.Model):
    name = models.CharField(max_length=120, unique=True)
    address = models.TextField()
    opens_at = models.TimeField(default=datetime.time(9))
    closes_at = models.TimeField(default=datetime.time(18))

    class Meta:
        verbose_name_plural = "branches"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Author(models.Model):
    first_name = models.CharField(max_length=80)
    last_name = models.CharField(max_length=80)
    born = models.DateField(null=True, blank=True)
    biography = models.TextField(blank=True)

    class Meta:
        ordering = ["last_name", "first_name"]
        indexes = [models.Index(fields=["last_name", "first_name"])]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}"


class Publisher(models.Model):
    name = models.CharField(max_length=160, unique=True)
    website = models.URLField(blank=True)
    country = models.CharField(max_length=2, default="GB")

    def __str__(self) -> str:
        return self.name


class Genre(models.Model):
    name = models.CharField(max_length=60, unique=True)
    slug = models.SlugField(unique=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")

    def __str__(self) -> str:
        return self.name


class Book(models.Model):
    title = models.CharField(max_length=250)
    subtitle = models.CharField(max_length=250, blank=True)
    isbn = models.CharField("ISBN", max_length=13, unique=True, validators=[isbn_validator])
    authors = models.ManyToManyField(Author, related_name="books")
    publisher = models.ForeignKey(Publisher, on_delete=models.PROTECT, related_name="books")
    genres = models.ManyToManyField(Genre, blank=True, related_name="books")
    published = models.DateField(null=True, blank=True)
    pages = models.PositiveIntegerField(null=True, blank=True)
    summary = models.TextField(blank=True)
    added = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("library:book", args=[self.pk])

    @property
    def available_copies(self) -> int:
        return self.copies.filter(status=BookCopy.Status.ON_SHELF).count()


class BookCopy(models.Model):
    class Status(models.TextChoices):
        ON_SHELF = "shelf", "on the shelf"
        ON_LOAN = "loan", "on loan"
        REPAIR = "repair", "in repair"
        LOST = "lost", "lost"

    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="copies")
    branch = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="copies")
    barcode = models.CharField(max_length=20, unique=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ON_SHELF)
    acquired = models.DateField(default=datetime.date.today)

    class Meta:
        verbose_name_plural = "book copies"

    def __str__(self) -> str:
        return f"{self.book} ({self.barcode})"


class Member(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="member")
    card_number = models.CharField(max_length=16, unique=True)
    home_branch = models.ForeignKey(Branch, on_delete=models.SET_NULL, null=True, related_name="members")
    joined = models.DateField(default=datetime.date.today)
    max_loans = models.PositiveSmallIntegerField(default=8)

    def __str__(self) -> str:
        return f"{self.user.get_full_name() or self.user.username} ({self.card_number})"


class Loan(models.Model):
    copy = models.ForeignKey(BookCopy, on_delete=models.PROTECT, related_name="loans")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="loans")
    lent = models.DateTimeField(default=timezone.now)
    due = models.DateField()
    returned = models.DateTimeField(null=True, blank=True)
    renewals = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-lent"]
        constraints = [
            models.UniqueConstraint(fields=["copy"], condition=models.Q(returned__isnull=True), name="one_open_loan_per_copy"),
        ]

    def __str__(self) -> str:
        return f"{self.copy} to {self.member}"

    @property
    def overdue(self) -> bool:
        return self.returned is None and self.due < timezone.localdate()


class Hold(models.Model):
    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="holds")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="holds")
    pickup_branch = models.ForeignKey(Branch, on_delete=models.PROTECT)
    placed = models.DateTimeField(auto_now_add=True)
    fulfilled = models.BooleanField(default=False)

    class Meta:
        ordering = ["placed"]

    def __str__(self) -> str:
        return f"hold on {self.book} for {self.member}"


class Review(models.Model):
    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="reviews")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="reviews")
    rating = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    text = models.TextField(blank=True)
    written = models.DateTimeField(auto_now_add=True)

    class Meta:
        unique_together = [("book", "member")]

    def __str__(self) -> str:
        return f"{self.rating}/5 for {self.book}"


class Fine(models.Model):
    loan = models.OneToOneField(Loan, on_delete=models.CASCADE, related_name="fine")
    amount = models.DecimalField(max_digits=6, decimal_places=2)
    paid = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.amount} for {self.loan}"
