from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import render

from autumn_admin.environment import current_env
from billing.services import balances_reset_due
from customers.models import Customer
from customers.selectors import get_customer_for


def customer_list(request):
    env = current_env(request)
    q = request.GET.get("q", "").strip()
    customers = Customer.objects.alive().filter(env=env)
    if q:
        customers = customers.filter(
            Q(customer_id__icontains=q) | Q(name__icontains=q) | Q(email__icontains=q) | Q(fingerprint__icontains=q)
        )
    page = Paginator(customers.order_by("-created_at", "-id"), 50).get_page(request.GET.get("page"))
    return render(request, "customers/list.html", {"page": page, "q": q})


def customer_detail(request, customer_id: str):
    customer = get_customer_for(current_env(request), customer_id)
    balances_reset_due(customer=customer)
    return render(request, "customers/detail.html", {"customer": customer})
