"""Every table of the shop, imported so that Base.metadata knows them all."""

from .catalog import Brand, Category, Product, ProductImage, ProductTag, ProductVariant, Review, Tag
from .content import AuditLog, BlogPost, Comment, Notification, Page, Subscriber
from .customers import Address, Cart, CartItem, Customer, Wishlist, WishlistItem
from .inventory import PurchaseOrder, PurchaseOrderLine, StockLevel, StockMovement, Supplier, Warehouse
from .orders import Coupon, CouponRedemption, Invoice, Order, OrderLine, Payment, Refund, Shipment, ShipmentItem
from .staff import Department, Employee, Permission, Role, Shift

__all__ = [
    "Address",
    "AuditLog",
    "BlogPost",
    "Brand",
    "Cart",
    "CartItem",
    "Category",
    "Comment",
    "Coupon",
    "CouponRedemption",
    "Customer",
    "Department",
    "Employee",
    "Invoice",
    "Notification",
    "Order",
    "OrderLine",
    "Page",
    "Payment",
    "Permission",
    "Product",
    "ProductImage",
    "ProductTag",
    "ProductVariant",
    "PurchaseOrder",
    "PurchaseOrderLine",
    "Refund",
    "Review",
    "Role",
    "Shift",
    "Shipment",
    "ShipmentItem",
    "StockLevel",
    "StockMovement",
    "Subscriber",
    "Supplier",
    "Tag",
    "Warehouse",
    "Wishlist",
    "WishlistItem",
]
